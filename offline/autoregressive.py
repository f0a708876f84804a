"""The offline autoregressive model: the DALL-E recipe at the size of a CPU.

Two parts, each loaded with its library's ``from_pretrained`` from one folder:

- an image tokenizer, diffusers' ``VQModel`` (``vqvae/``): a 64×64 picture becomes a 16×16 grid
  of codebook entries (``CODES`` of them), 4×4 pixels each, and back. ``offline.train_vq``.
- a decoder-only transformer, transformers' ``GPT2LMHeadModel`` (the folder's root), over one
  sequence per picture: the caption's tokens (the diffusion model's word tokenizer,
  ``tokenizer/``), padded to ``TEXT_TOKENS``, a begin-of-image token, then the 256 image tokens in
  reading order. It learns to predict each image token from everything before it, and draws a
  picture by sampling them one at a time, with classifier-free guidance against the caption left
  empty. ``offline.train_ar``.

Token ids: text tokens first (``0 .. text_vocab - 1``), then the codebook (``image_offset() +
code``), then the begin-of-image token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from offline import diffusion as D
from offline import world
from offline.training import background, low_precision

WEIGHTS = Path(__file__).resolve().parent / "weights" / "autoregressive"
SIZE = world.SIZE
# 16×16 tokens of 4×4 pixels. An 8×8 grid (8 pixels a token, DALL-E's ratio) trained the same
# way gave back held-out pictures the judge read right for colour 0.73 and shape 0.20 of the
# time: a small shape (14–18 px across) falls on four or so tokens, each a part of some shape in
# some colour on some background, more kinds than 512 entries can hold.
GRID = 16
CODES = 512
TEXT_TOKENS = D.MAX_TOKENS

VQ = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 3,  # 4× down
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [16, 32, 64],
    "layers_per_block": 1,
    "latent_channels": 16,
    "num_vq_embeddings": CODES,
    "vq_embed_dim": 16,
    "norm_num_groups": 1,  # see offline/diffusion.py: groups over few channels cancel colours
    "sample_size": SIZE,
}

# No dropout (GPT-2's default is 0.1): a model this small, on a pool it sees a few times over,
# underfits long before it could overfit.
NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
GPT = {
    "n_embd": 128,
    "n_layer": 4,
    "n_head": 4,
    "n_positions": TEXT_TOKENS + 1 + GRID * GRID,
    **NO_DROPOUT,
}


@dataclass
class Model:
    """The three parts that draw a picture."""

    gpt: object  # GPT2LMHeadModel
    vq: object  # VQModel
    tokenizer: object  # CLIPTokenizer

    @property
    def components(self) -> dict:
        """By name, as a diffusers pipeline lists its parts."""
        return {"gpt": self.gpt, "vq": self.vq, "tokenizer": self.tokenizer}

    @property
    def text_vocab(self) -> int:
        return len(self.tokenizer)

    @property
    def begin_image(self) -> int:
        return self.text_vocab + CODES


def gpt_config(text_vocab: int, width: int = GPT["n_embd"], layers: int = GPT["n_layer"]):
    """GPT-2's config for ``A.GPT``, or another width and depth (a head per 32 channels, as
    ``A.GPT``): ``load`` reads whichever a folder holds."""
    from transformers import GPT2Config

    boi = text_vocab + CODES
    size = {"n_embd": width, "n_layer": layers, "n_head": width // 32}
    return GPT2Config(vocab_size=boi + 1, bos_token_id=boi, eos_token_id=boi, **{**GPT, **size})


def load(folder: Path = WEIGHTS, dtype=torch.float32, device="cpu") -> Model:
    from transformers import CLIPTokenizer, GPT2LMHeadModel

    folder = Path(folder)
    # The app loads it (the offline-ar preset): from the folder only, never the hub.
    local = {"local_files_only": True}
    gpt = GPT2LMHeadModel.from_pretrained(folder, dtype=dtype, **local).to(device).eval()
    vq = load_vq(folder, dtype).to(device)
    return Model(gpt, vq, CLIPTokenizer.from_pretrained(folder / "tokenizer", **local))


def load_vq(folder: Path = WEIGHTS, dtype=torch.float32):
    """The image tokenizer alone (``<folder>/vqvae``), as ``load`` loads it."""
    from diffusers import VQModel

    return VQModel.from_pretrained(
        Path(folder) / "vqvae", dtype=dtype, local_files_only=True
    ).eval()


def caption_ids(tokenizer, texts: list[str]) -> torch.Tensor:
    """[N, TEXT_TOKENS]: each caption's word tokens, padded (or cut) to TEXT_TOKENS."""
    return tokenizer(
        texts, padding="max_length", max_length=TEXT_TOKENS, truncation=True, return_tensors="pt"
    ).input_ids


def prompt_ids(tokenizer, texts: list[str]) -> torch.Tensor:
    """[N, TEXT_TOKENS + 1]: each caption's tokens (``caption_ids``), then begin-of-image."""
    ids = caption_ids(tokenizer, texts)
    boi = torch.full((len(texts), 1), len(tokenizer) + CODES)
    return torch.cat([ids, boi], dim=1)


@torch.no_grad()
def encode(vq, images: np.ndarray) -> torch.Tensor:
    """uint8 [N, 64, 64, 3] → codes [N, 256], in reading order."""
    h = vq.encode(D.to_pixels(images).to(vq.device, vq.dtype)).latents
    _, _, (_, _, codes) = vq.quantize(h)
    return codes.view(len(images), GRID * GRID)


def encode_scenes(vq, scenes: list[world.Scene], batch: int = 200) -> torch.Tensor:
    """Each scene drawn once, as its 256 image tokens: [N, 256] (a training pool, a few hundred
    pictures' memory at a time)."""
    return torch.cat(
        [
            encode(vq, D.draw_batch(scenes[i : i + batch], scale=1))
            for i in range(0, len(scenes), batch)
        ]
    )


@torch.no_grad()
def decode(vq, codes: torch.Tensor) -> np.ndarray:
    """codes [N, 256] → uint8 [N, 64, 64, 3]."""
    dim = vq.config.vq_embed_dim
    quant = vq.quantize.get_codebook_entry(codes.reshape(-1), (len(codes), GRID, GRID, dim))
    return D.to_images(vq.decode(quant, force_not_quantize=True).sample)


class ImageTokensOnly:
    """A logits processor: only codebook entries may be sampled (never text, never the
    begin-of-image token)."""

    def __init__(self, model: Model):
        self.first, self.last = model.text_vocab, model.text_vocab + CODES

    def __call__(self, input_ids, scores):
        scores[:, : self.first] = -float("inf")
        scores[:, self.last :] = -float("inf")
        return scores


@torch.no_grad()
def sample(model: Model, texts: list[str], seed: int, guidance: float = 3.0, processors=()):
    """Codes [N, 64] for ``texts``, drawn token by token from the whole softmax (no top-k), with
    classifier-free guidance: the logits move away from those for the empty caption by
    ``guidance`` (1: the caption's own). ``processors`` (transformers logits processors) run
    once per token after that, e.g. to count progress."""
    from transformers import LogitsProcessorList

    device = model.gpt.device
    ids = prompt_ids(model.tokenizer, texts).to(device)
    extra = {}
    if guidance != 1:
        extra = {
            "guidance_scale": guidance,
            "negative_prompt_ids": prompt_ids(model.tokenizer, [""] * len(texts)).to(device),
        }
    torch.manual_seed(seed)  # generate draws with torch.multinomial from the global generator
    out = model.gpt.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=GRID * GRID,
        min_new_tokens=GRID * GRID,
        do_sample=True,
        top_k=0,
        logits_processor=LogitsProcessorList([ImageTokensOnly(model), *processors]),
        pad_token_id=model.begin_image,
        **extra,
    )
    return out[:, ids.shape[1] :] - model.text_vocab


def draw(model: Model, texts: list[str], seed: int = 0, guidance: float = 3.0) -> np.ndarray:
    """uint8 [N, 64, 64, 3] pictures for ``texts``, picture n from seed ``seed + n``."""
    return np.concatenate(
        [
            decode(model.vq, sample(model, [text], seed + n, guidance))
            for n, text in enumerate(texts)
        ]
    )


def grid_sinusoids(width: int, spread: float) -> torch.Tensor:
    """[256, width]: a start for the image tokens' position embeddings, each its row's sinusoids
    beside its column's (the 2-D sin-cos embedding of MAE), scaled to ``spread`` (the
    transformer's initial spread, so they do not drown the tokens). A transformer starts every
    position as noise; with these the token above, 16 back, is as easy to find as the one
    before, and a shape's outline is drawn row under row. Training moves them on as any
    embedding."""
    n = width // 4  # frequencies per axis: a sine and a cosine each, for rows and for columns
    # From half a wave across the grid to one every two tokens.
    freqs = torch.pi / GRID * torch.logspace(0, torch.log2(torch.tensor(GRID)), n, base=2)
    angles = torch.arange(GRID, dtype=torch.float32)[:, None] * freqs
    axis = torch.cat([angles.sin(), angles.cos()], dim=1)  # [GRID, width / 2]
    rows = axis[:, None, :].expand(GRID, GRID, width // 2)
    cols = axis[None, :, :].expand(GRID, GRID, width // 2)
    grid = torch.cat([rows, cols], dim=-1).reshape(GRID * GRID, width)
    return grid * (spread / grid.std())


def image_logits(gpt, prompt: torch.Tensor, codes: torch.Tensor, text_vocab: int) -> torch.Tensor:
    """[N, 256, vocabulary]: at each of a picture's image tokens, the GPT's logits for it given
    its caption (``prompt``: caption ids and the begin-of-image token, from ``prompt_ids``)
    and the picture's tokens before it (``codes``: [N, 256] codebook entries, after the text
    vocabulary in the sequence). Teacher forcing: the logits at position p predict token p + 1,
    so the last caption position (begin-of-image) predicts the first image token."""
    ids = torch.cat([prompt, codes + text_vocab], dim=1)
    with low_precision(ids.device):
        logits = gpt(input_ids=ids).logits
    return logits[:, prompt.shape[1] - 1 : -1].float()


@torch.no_grad()
def likeliest_tokens(gpt, prompt: torch.Tensor, codes: torch.Tensor, text_vocab: int):
    """[N, 256] codebook entries: at each position, the one the GPT finds likeliest given the
    caption and the picture's true tokens before it. Decoded, they show what the model knows
    of a picture apart from what sampling makes of it: where these do not draw the shape, no
    sampler will."""
    logits = image_logits(gpt, prompt, codes, text_vocab)
    return logits[..., text_vocab : text_vocab + CODES].argmax(-1)


def teacher_forced_pictures(model: Model, scenes: list[world.Scene]) -> np.ndarray:
    """uint8 [N, 64, 64, 3]: each scene's picture as ``likeliest_tokens`` draw it from its
    caption and its true tokens, decoded."""
    codes = encode(model.vq, D.draw_batch(scenes, scale=1))
    prompt = prompt_ids(model.tokenizer, [world.caption(scene) for scene in scenes])
    return decode(model.vq, likeliest_tokens(model.gpt, prompt, codes, model.text_vocab))


def drawn_cells(pictures: np.ndarray) -> torch.Tensor:
    """bool [N, GRID, GRID]: the cells of each picture's token grid (uint8 [N, 64, 64, 3]) where
    anything is drawn on its flat background (``training.background``)."""
    x = torch.from_numpy(pictures).permute(0, 3, 1, 2).float()
    differs = (x - background(x)).abs().amax(dim=1) > 0  # [N, 64, 64]
    n, side = len(pictures), world.SIZE // GRID
    return differs.reshape(n, GRID, side, GRID, side).any(dim=4).any(dim=2)


def tokens_and_drawn(vq, scenes: list[world.Scene]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each scene drawn: its image tokens [N, 256] and, for each, whether anything is drawn on
    its cell (``drawn_cells``, bool [N, 256]), both in reading order."""
    pictures = D.draw_batch(scenes, scale=1)
    return encode(vq, pictures), drawn_cells(pictures).flatten(1)


def shape_codes(codes: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
    """bool [CODES]: the codebook entries found more often among ``codes`` on a cell with a
    shape drawn on than on one without (``tokens_and_drawn``)."""
    on = torch.bincount(codes[drawn], minlength=CODES)
    return on > torch.bincount(codes[~drawn], minlength=CODES)


def after_shape(codes: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """bool [N, 256]: the positions of ``codes`` [N, 256] whose token to the left (in the same
    row) or above is one of the ``shape`` entries (``shape_codes``): where an outline may go on.
    A function of the tokens before each position alone, as a left-to-right model reads them."""
    s = shape[codes].view(-1, GRID, GRID)
    out = torch.zeros_like(s)
    out[:, :, 1:] |= s[:, :, :-1]
    out[:, 1:, :] |= s[:, :-1, :]
    return out.flatten(1)


def replace_shape_tokens(codes, shapes, share: float, g) -> torch.Tensor:
    """``codes`` [N, 256] with about ``share`` of each picture's shape tokens (``shapes``) each
    replaced by one of the picture's shape tokens, drawn at random: the errors of a model
    that knows which colours go where and not which part of the outline."""
    out = codes.clone()
    for n, on in enumerate(shapes):
        cells = on.nonzero().flatten()
        if len(cells):
            chosen = cells[torch.rand(len(cells), generator=g) < share]
            out[n, chosen] = codes[n, cells[torch.randint(len(cells), (len(chosen),), generator=g)]]
    return out
