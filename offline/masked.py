"""The masked token model: MaskGIT's recipe (Chang et al., 2022) on the autoregressive model's
image tokens, a second "tokens, not pixels" design to compare with the GPT (docs/models.md).

One folder, each part loaded with its library's ``from_pretrained``: a bidirectional
transformer, transformers' ``BertForMaskedLM`` (the folder's root), the image tokenizer
(``vqvae/``) and the word tokenizer (``tokenizer/``) of ``offline.autoregressive``. The
transformer reads a caption (padded to ``A.TEXT_TOKENS``) and a picture's 256 tokens, some of
them replaced by a mask token, and learns to tell the masked ones: with the tokens on every side
of a shape's edge to go by, where the GPT has only those above and to the left. It draws in a few
rounds: every token masked at first; each round it samples every masked token at once, keeps the
surest and masks the rest again, fewer each round. ``offline.train_masked``.

Token ids: text tokens first, then the codebook (``text_vocab + code``), then the mask token.
Caption and image tokens are told apart by BERT's token types (0 and 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from offline import autoregressive as A
from offline.training import low_precision

WEIGHTS = A.WEIGHTS.parent / "masked"
IMAGE_TOKENS = A.GRID * A.GRID
# MaskGIT's defaults for a 16×16 grid: 8 to 12 rounds; sampled tokens ranked by their
# probability plus Gumbel noise of this scale, falling to none by the last round, so that the
# first rounds do not all keep the same few sure background tokens.
ROUNDS = 12
CHOICE_TEMPERATURE = 4.5

# As the GPT (``A.GPT``): a head per 32 channels, no dropout; four times as wide inside.
BERT = {
    "hidden_size": 128,
    "num_hidden_layers": 4,
    "max_position_embeddings": A.TEXT_TOKENS + IMAGE_TOKENS,
    "type_vocab_size": 2,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}


@dataclass
class Model:
    """The three parts that draw a picture."""

    bert: object  # BertForMaskedLM
    vq: object  # VQModel
    tokenizer: object  # CLIPTokenizer

    @property
    def text_vocab(self) -> int:
        return len(self.tokenizer)


def mask_id(text_vocab: int) -> int:
    return text_vocab + A.CODES


def bert_config(
    text_vocab: int, width: int = BERT["hidden_size"], layers=BERT["num_hidden_layers"]
):
    from transformers import BertConfig

    size = {
        "hidden_size": width,
        "num_hidden_layers": layers,
        "num_attention_heads": width // 32,
        "intermediate_size": 4 * width,
    }
    return BertConfig(vocab_size=mask_id(text_vocab) + 1, **{**BERT, **size})


def load(folder: Path = WEIGHTS) -> Model:
    from transformers import BertForMaskedLM, CLIPTokenizer

    folder = Path(folder)
    bert = BertForMaskedLM.from_pretrained(folder, local_files_only=True).eval()
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
    return Model(bert, A.load_vq(folder), tokenizer)


def code_logits(bert, captions: torch.Tensor, ids: torch.Tensor, text_vocab: int) -> torch.Tensor:
    """[N, 256, CODES]: at each image position, the logits of each codebook entry, given the
    caption (``captions``: ``A.caption_ids``) and the picture's tokens (``ids``: [N, 256] in
    the sequence's ids, codes after the text vocabulary, masked ones ``mask_id``). Only the
    codebook's logits: nothing else may stand in a picture."""
    sequence = torch.cat([captions, ids], dim=1)
    types = torch.zeros_like(sequence)
    types[:, captions.shape[1] :] = 1
    with low_precision(sequence.device):
        logits = bert(input_ids=sequence, token_type_ids=types).logits
    return logits[:, captions.shape[1] :, text_vocab : text_vocab + A.CODES].float()


def random_masks(n: int, generator=None) -> torch.Tensor:
    """bool [n, 256]: for each picture, a share of its tokens to mask, drawn from MaskGIT's
    cosine schedule (cos(π/2·u), u uniform: most often more than half, at least one token),
    at random places."""
    share = torch.cos(math.pi / 2 * torch.rand(n, generator=generator))
    count = (share * IMAGE_TOKENS).ceil().clamp(min=1)
    rank = torch.rand(n, IMAGE_TOKENS, generator=generator).argsort(1).argsort(1)
    return rank < count[:, None]


def masked_loss(bert, captions, codes, text_vocab: int, masks) -> torch.Tensor:
    """The mean cross-entropy of the masked tokens (``masks``, bool [N, 256]) of pictures
    ``codes`` [N, 256] given their captions and the tokens left; the others are not learnt."""
    ids = torch.where(masks, mask_id(text_vocab), codes + text_vocab)
    logits = code_logits(bert, captions, ids, text_vocab)
    return F.cross_entropy(logits[masks], codes[masks])


def still_masked(round_: int, rounds: int) -> int:
    """How many of the 256 tokens stay masked after round ``round_`` (from 0) of ``rounds``:
    MaskGIT's cosine schedule, down to none after the last."""
    # The share first: π/2·13/13 comes out a hair over π/2, and its cosine below nothing.
    return max(0, math.floor(IMAGE_TOKENS * math.cos(math.pi / 2 * ((round_ + 1) / rounds))))


@torch.no_grad()
def sample(
    model: Model, texts: list[str], seed: int, guidance: float = 3.0, rounds: int = ROUNDS
) -> torch.Tensor:
    """Codes [N, 256] for ``texts`` in ``rounds`` rounds, each token drawn from the whole softmax
    with classifier-free guidance (as ``A.sample``: away from the empty caption's logits by
    ``guidance``). Each round keeps all it drew but the least sure of it, which ``still_masked``
    counts (at least one token is kept each round)."""
    g = torch.Generator().manual_seed(seed)
    n, vocab = len(texts), model.text_vocab
    captions = A.caption_ids(model.tokenizer, texts)
    empty = A.caption_ids(model.tokenizer, [""] * n)
    ids = torch.full((n, IMAGE_TOKENS), mask_id(vocab))
    for round_ in range(rounds):
        logits = code_logits(model.bert, captions, ids, vocab)
        if guidance != 1:
            unguided = code_logits(model.bert, empty, ids, vocab)
            logits = unguided + guidance * (logits - unguided)
        logp = logits.log_softmax(-1)
        drawn = torch.multinomial(logp.exp().view(-1, A.CODES), 1, generator=g).view(n, -1)
        masked = ids == mask_id(vocab)
        ids = torch.where(masked, drawn + vocab, ids)
        if round_ == rounds - 1:
            break
        gumbel = -torch.log(-torch.log(torch.rand(n, IMAGE_TOKENS, generator=g)))
        noise = CHOICE_TEMPERATURE * (1 - (round_ + 1) / rounds)
        sure = logp.gather(-1, drawn[..., None])[..., 0] + noise * gumbel
        sure[~masked] = math.inf  # kept from an earlier round
        left = max(0, min(still_masked(round_, rounds), int(masked[0].sum()) - 1))
        again = sure.argsort(1)[:, :left]
        ids.scatter_(1, again, mask_id(vocab))
    return ids - vocab


def draw(model: Model, texts: list[str], seed: int = 0, guidance: float = 3.0) -> np.ndarray:
    """uint8 [N, 64, 64, 3] pictures for ``texts``, picture n from seed ``seed + n``."""
    return np.concatenate(
        [
            A.decode(model.vq, sample(model, [text], seed + n, guidance))
            for n, text in enumerate(texts)
        ]
    )


@torch.no_grad()
def filled_pictures(model: Model, scenes) -> np.ndarray:
    """uint8 [N, 64, 64, 3]: each scene's picture with the tokens a shape is drawn on
    (``A.drawn_cells``) masked and filled in one pass, each with the model's likeliest entry
    given the caption and the picture's other tokens: what it knows of a shape's outline once
    it is told where the shape is, before sampling (the counterpart of the GPT's
    ``A.teacher_forced_pictures``)."""
    from offline import world

    codes, shapes = A.tokens_and_drawn(model.vq, scenes)
    vocab = model.text_vocab
    ids = torch.where(shapes, mask_id(vocab), codes + vocab)
    captions = A.caption_ids(model.tokenizer, [world.caption(scene) for scene in scenes])
    likeliest = code_logits(model.bert, captions, ids, vocab).argmax(-1)
    return A.decode(model.vq, torch.where(shapes, likeliest, codes))
