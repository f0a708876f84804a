"""Train the autoregressive model's transformer: ``python -m offline.train_ar``.

Needs the image tokenizer from ``offline.train_vq`` in ``<out>/vqvae``. Draws a pool of
``split="train"`` scenes, turns each into its 256 image tokens once, then trains a GPT-2 from
scratch on caption + image sequences (``offline.autoregressive``): cross-entropy on the image
tokens only, the caption being what they are conditioned on, every token weighing the same (a
weight that depends on the token to predict moves what the model learns away from the pictures'
odds: see ``image_loss``). As for the diffusion model, each step writes the captions afresh, a
third of them loosened and one in ten empty (for guidance).

Writes the GPT-2 (``config.json``, ``model.safetensors``) and ``tokenizer/`` into ``<out>``, the
``gpt`` entry of ``training.json``, then grades held-out captions with the judge
(``python -m offline.evaluate autoregressive`` repeats that on its own).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from offline import autoregressive as A
from offline import diffusion as D
from offline import evaluate, training, world
from offline.train_diffusion import captions, said


def encode_pool(vq, scenes: list[world.Scene], batch: int = 200) -> torch.Tensor:
    """Each scene drawn once, as its 256 image tokens: [N, 256]."""
    return torch.cat(
        [
            A.encode(vq, D.draw_batch(scenes[i : i + batch], scale=1))
            for i in range(0, len(scenes), batch)
        ]
    )


def grid_positions(gpt) -> None:
    """Starts each image token's position embedding as its row's sinusoids beside its column's
    (the 2-D sin-cos embedding of MAE), where GPT-2 starts every position as noise: the token
    above, 16 back, is then as easy to find as the one before, and a shape's outline is drawn
    row under row. Training moves them on as any embedding; the caption's positions keep
    GPT-2's start. Scaled to GPT-2's initial spread, so they do not drown the tokens."""
    d = gpt.config.n_embd
    n = d // 4  # frequencies per axis: a sine and a cosine each, for rows and for columns
    # From half a wave across the grid to one every two tokens.
    freqs = torch.pi / A.GRID * torch.logspace(0, torch.log2(torch.tensor(A.GRID)), n, base=2)
    angles = torch.arange(A.GRID, dtype=torch.float32)[:, None] * freqs
    axis = torch.cat([angles.sin(), angles.cos()], dim=1)  # [GRID, d / 2]
    rows = axis[:, None, :].expand(A.GRID, A.GRID, d // 2)
    cols = axis[None, :, :].expand(A.GRID, A.GRID, d // 2)
    grid = torch.cat([rows, cols], dim=-1).reshape(A.GRID * A.GRID, d)
    grid *= gpt.config.initializer_range / grid.std()
    with torch.no_grad():
        gpt.transformer.wpe.weight[A.TEXT_TOKENS + 1 :] = grid


def image_loss(gpt, prompt: torch.Tensor, codes: torch.Tensor, text_vocab: int) -> torch.Tensor:
    """The mean cross-entropy of a picture's image tokens given its caption and the tokens
    before each (``A.image_logits``); the caption's own tokens are not learnt.

    Every image token weighs the same. Weighing those with a shape drawn on four times (they are
    a tenth of a picture) was tried and dropped: a weight chosen by the token to predict moves
    the loss's best guess off the pictures' odds, multiplying the odds of a shape's token by
    four wherever the model is unsure (at a shape's edge, anywhere on the background); its
    pictures had specks of colour all over (docs/models.md, "A bias found")."""
    logits = A.image_logits(gpt, prompt, codes, text_vocab)
    return F.cross_entropy(logits.transpose(1, 2), codes + text_vocab)


# Held-out scenes the learning curve (``--curve``) grades: few, as it grades them many times.
CURVE_CAPTIONS = 40


def curve_point(gpt, vq, tokenizer, step: int) -> dict:
    """A point of the run's learning curve: the judge's figures for the GPT as it is at
    ``step``, on the first ``CURVE_CAPTIONS`` held-out scenes' captions, for its pictures and
    (``teacher_forced``) for the pictures of its likeliest tokens given the true ones before
    each (``A.teacher_forced_pictures``): what it knows, before sampling."""
    scenes = evaluate.heldout_scenes(CURVE_CAPTIONS)
    prompts = [world.caption(scene) for scene in scenes]
    model = A.Model(gpt.eval(), vq, tokenizer)
    drawn = evaluate.grade_pictures(A.draw(model, prompts), prompts)
    known = evaluate.grade_pictures(A.teacher_forced_pictures(model, scenes), prompts)
    gpt.train()
    return {"step": step, **rounded(drawn), "teacher_forced": rounded(known)}


def rounded(scores: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in scores.items()}


def train(gpt, vq, tokenizer, pool: torch.Tensor, scenes, run: training.Run):
    """Trains ``gpt``; returns it and its learning curve (a point every ``--curve`` steps)."""
    args = run.args
    rng = np.random.default_rng(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    opt, sched = training.one_cycle(gpt.parameters(), args.lr, args.steps, weight_decay=0.01)
    offset = len(tokenizer)
    pool = pool.to(run.device)
    curve = []
    gpt.train()
    for step in range(1, args.steps + 1):
        idx = torch.randint(len(pool), (args.batch_size,), generator=g)
        prompt = A.prompt_ids(tokenizer, captions(said([scenes[i] for i in idx], rng)))
        loss = image_loss(gpt, prompt.to(run.device), pool[idx.to(run.device)], offset)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(gpt.parameters(), 1.0)
        opt.step()
        sched.step()
        run.step(step, loss.item())
        if args.save_every and step % args.save_every == 0 and step < args.steps:
            gpt.save_pretrained(args.out)  # to go on from with --resume, should the run stop
            run.say(f"saved step {step}")
        if args.curve and step % args.curve == 0:
            curve.append(curve_point(gpt, vq, tokenizer, step))
            run.say(f"curve: {curve[-1]}")
    return gpt.eval(), curve


def width(text: str) -> int:
    """A GPT-2 width from the command line: a head per 32 channels (``A.gpt_config``)."""
    value = int(text)
    if value <= 0 or value % 32:
        raise argparse.ArgumentTypeError(f"{value} is not a positive multiple of 32")
    return value


def main(argv=None) -> None:
    from diffusers import VQModel
    from transformers import GPT2LMHeadModel

    parser = training.arguments(
        __doc__,
        out=A.WEIGHTS,
        steps=4500,
        batch_size=16,
        lr=1e-3,
        seed=0,
        threads=2,
        pool=40_000,
        eval=200,
        device="cpu",
        resume="the GPT-2",
    )
    parser.add_argument(
        "--width",
        type=width,
        default=A.GPT["n_embd"],
        help="a new GPT-2's width, a multiple of 32 (--resume: the saved one's)",
    )
    parser.add_argument("--layers", type=int, default=A.GPT["n_layer"], help="its layers")
    parser.add_argument(
        "--curve",
        type=int,
        default=0,
        metavar="N",
        help=f"every N steps, grade {CURVE_CAPTIONS} held-out captions (the run's learning curve,"
        " kept in its record); 0: never",
    )
    training.add_options(parser, save_every=1000)
    args = parser.parse_args(argv)
    run = training.Run(args, "gpt")
    vq = VQModel.from_pretrained(args.out / "vqvae", local_files_only=True).to(run.device).eval()
    tokenizer = D.write_tokenizer(args.out / "tokenizer")
    rng = np.random.default_rng(args.seed)
    scenes = [world.sample_scene(rng, "train") for _ in range(args.pool)]
    pool = encode_pool(vq, scenes)
    run.say(f"encoded {len(scenes)} pictures; {len(pool.unique())} codes in use")
    if args.resume:
        gpt = GPT2LMHeadModel.from_pretrained(args.out, dtype=torch.float32, local_files_only=True)
    else:
        gpt = GPT2LMHeadModel(A.gpt_config(len(tokenizer), args.width, args.layers))
        grid_positions(gpt)
    gpt, curve = train(gpt.to(run.device), vq, tokenizer, pool, scenes, run)
    gpt.save_pretrained(args.out)
    entry = run.record(width=gpt.config.n_embd, layers=gpt.config.n_layer)
    if args.curve:
        entry["curve"] = curve  # its steps are this run's (a resumed one's start again at 1)
    if args.eval:
        model = A.Model(gpt, vq, tokenizer)
        prompts = evaluate.heldout_captions(args.eval)
        scores = evaluate.grade_pictures(A.draw(model, prompts), prompts)
        run.say("held-out captions: " + " ".join(f"{k} {v:.3f}" for k, v in scores.items()))
        entry["heldout"] = rounded(scores)
    run.save_record(entry)


if __name__ == "__main__":
    main()
