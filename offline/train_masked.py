"""Train the masked token model's transformer: ``python -m offline.train_masked``.

MaskGIT's recipe (``offline.masked``) on the autoregressive model's tokens: the image tokenizer
is ``offline.train_vq``'s, copied from ``--tokens`` (the bundled one) into ``<out>/vqvae``, so
that the two token models write the same tokens and compare as designs alone. Trained as
``offline.train_ar`` trains the GPT (the same pool, captions, optimiser and schedule), on
another loss: each picture has a share of its tokens masked (``masked.random_masks``), and the
cross-entropy of those is learnt.

Writes the transformer (``config.json``, ``model.safetensors``), ``vqvae/`` and ``tokenizer/``
into ``<out>``, the ``masked`` entry of ``training.json`` (beside the tokenizer's ``vq``), then
grades held-out captions with the judge.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from offline import autoregressive as A
from offline import diffusion as D
from offline import evaluate, training, world
from offline import masked as M
from offline.train_ar import (
    CURVE_CAPTIONS,
    RECIPE,
    add_size_options,
    rounded,
    save_record,
    train,
)


def curve_point(model: M.Model, step: int) -> dict:
    """The judge's figures for the model as it is at ``step``, on the first ``CURVE_CAPTIONS``
    held-out scenes (those ``train_ar.curve_point`` grades the GPT on): for its pictures, and
    (``shapes_masked``) for the true pictures with their shapes' tokens masked and filled in
    (``masked.filled_pictures``): what it knows, before sampling."""
    scenes = evaluate.heldout_scenes(CURVE_CAPTIONS)
    prompts = [world.caption(scene) for scene in scenes]
    drawn = evaluate.grade_pictures(M.draw(model, prompts), prompts)
    known = evaluate.grade_pictures(M.filled_pictures(model, scenes), prompts)
    return {"step": step, **rounded(drawn), "shapes_masked": rounded(known)}


def take_tokenizer(tokens: Path, out: Path) -> None:
    """Copies the image tokenizer of ``tokens`` into ``out`` with its record, unless ``out``
    has one (a resumed run's)."""
    if not (out / "vqvae").exists():
        shutil.copytree(tokens / "vqvae", out / "vqvae")
        training.update_record(out, "vq", training.read_record(tokens, "vq"))


def main(argv=None) -> None:
    from transformers import BertForMaskedLM

    parser = training.arguments(__doc__, out=M.WEIGHTS, **RECIPE, resume="the transformer")
    parser.add_argument(
        "--tokens",
        type=Path,
        default=A.WEIGHTS,
        help="the folder whose image tokenizer (vqvae/) a new model writes in",
    )
    add_size_options(parser, M.BERT["hidden_size"], M.BERT["num_hidden_layers"], "transformer")
    training.add_options(parser, save_every=1000)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    run = training.Run(args, "masked")
    take_tokenizer(args.tokens, args.out)
    vq = A.load_vq(args.out).to(run.device)
    tokenizer = D.write_tokenizer(args.out / "tokenizer")
    rng = np.random.default_rng(args.seed)
    scenes = [world.sample_scene(rng, "train") for _ in range(args.pool)]
    pool = A.encode_scenes(vq, scenes)
    run.say(f"encoded {len(scenes)} pictures; {len(pool.unique())} codes in use")
    vocab = len(tokenizer)
    if args.resume:
        bert = BertForMaskedLM.from_pretrained(args.out, local_files_only=True)
    else:
        bert = BertForMaskedLM(M.bert_config(vocab, args.width, args.layers))
        positions = bert.bert.embeddings.position_embeddings.weight
        with torch.no_grad():  # the start the GPT's image positions have (train_ar.grid_positions)
            positions[A.TEXT_TOKENS :] = A.grid_sinusoids(args.width, bert.config.initializer_range)
    bert = bert.to(run.device)
    model = M.Model(bert, vq, tokenizer)

    def loss_of(texts, codes):
        captions = A.caption_ids(tokenizer, texts).to(run.device)
        masks = M.random_masks(len(codes)).to(run.device)
        return M.masked_loss(bert, captions, codes, vocab, masks)

    bert, curve = train(bert, pool, scenes, run, loss_of, lambda step: curve_point(model, step))
    bert.save_pretrained(args.out)
    entry = run.record(width=bert.config.hidden_size, layers=bert.config.num_hidden_layers)
    save_record(run, entry, curve, lambda prompts: M.draw(model, prompts))


if __name__ == "__main__":
    main()
