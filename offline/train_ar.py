"""Train the autoregressive model's transformer: ``python -m offline.train_ar``.

Needs the image tokenizer from ``offline.train_vq`` in ``<out>/vqvae``. Draws a pool of
``split="train"`` scenes, turns each into its 256 image tokens once, then trains a GPT-2 from
scratch on caption + image sequences (``offline.autoregressive``): cross-entropy on the image
tokens only, the caption being what they are conditioned on, every token weighing the same, or
with ``--context-weight`` more where the token before or above is a shape's (a weight may
depend on what comes before a token, never on the token to predict: see ``image_loss``). As
for the diffusion model, each step writes the captions afresh, a third of them loosened and one
in ten empty (for guidance).

Writes the GPT-2 (``config.json``, ``model.safetensors``) and ``tokenizer/`` into ``<out>``, the
``gpt`` entry of ``training.json``, then grades held-out captions with the judge
(``python -m offline.evaluate autoregressive`` repeats that on its own).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from offline import autoregressive as A
from offline import diffusion as D
from offline import evaluate, training, world
from offline.train_diffusion import captions, said


def grid_positions(gpt) -> None:
    """Starts the image tokens' position embeddings as their row's and column's sinusoids
    (``A.grid_sinusoids``); the caption's positions keep GPT-2's start."""
    config = gpt.config
    with torch.no_grad():
        wpe = gpt.transformer.wpe.weight
        wpe[A.TEXT_TOKENS + 1 :] = A.grid_sinusoids(config.n_embd, config.initializer_range)


def image_loss(gpt, prompt, codes, text_vocab: int, weights=None) -> torch.Tensor:
    """The cross-entropy of a picture's image tokens given its caption and the tokens before
    each (``A.image_logits``), their mean or, with ``weights`` [N, 256], their weighted mean; the
    caption's own tokens are not learnt.

    A weight may depend on the tokens before a position (``--context-weight``, from
    ``A.after_shape``), never on the token to predict. Weighing the tokens with a shape drawn
    on four times (they are a tenth of a picture) was tried and dropped: a weight chosen by the
    token to predict moves the loss's best guess off the pictures' odds, multiplying the odds
    of a shape's token by four wherever the model is unsure (at a shape's edge, anywhere on the
    background); its pictures had specks of colour all over (docs/models.md, "A bias found").
    A weight fixed by what comes before leaves the best guess at each position where it was,
    the pictures' own odds given what comes before; it only spends more of the gradient there."""
    logits = A.image_logits(gpt, prompt, codes, text_vocab)
    each = F.cross_entropy(logits.transpose(1, 2), codes + text_vocab, reduction="none")
    if weights is None:
        return each.mean()
    return (each * weights).sum() / weights.sum()


# Held-out scenes the learning curve (``--curve``) grades: few, as it grades them many times.
CURVE_CAPTIONS = 40


def curve_point(gpt, vq, tokenizer, step: int) -> dict:
    """A point of the run's learning curve: the judge's figures for the GPT as it is at
    ``step``, on the first ``CURVE_CAPTIONS`` held-out scenes' captions, for its pictures and
    (``teacher_forced``) for the pictures of its likeliest tokens given the true ones before
    each (``A.teacher_forced_pictures``): what it knows, before sampling."""
    scenes = evaluate.heldout_scenes(CURVE_CAPTIONS)
    prompts = [world.caption(scene) for scene in scenes]
    model = A.Model(gpt, vq, tokenizer)
    drawn = evaluate.grade_pictures(A.draw(model, prompts), prompts)
    known = evaluate.grade_pictures(A.teacher_forced_pictures(model, scenes), prompts)
    return {"step": step, **rounded(drawn), "teacher_forced": rounded(known)}


def rounded(scores: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in scores.items()}


def train(net, pool: torch.Tensor, scenes, run: training.Run, loss_of, point=None):
    """Trains ``net`` (the GPT, or ``offline.train_masked``'s transformer) on the pictures of
    ``scenes``, each as its tokens in ``pool``, with captions written afresh each step
    (``said``); ``loss_of(captions, codes)`` is the loss of a batch. Returns ``net`` and its
    learning curve: ``point(step)`` every ``--curve`` steps, with ``net`` in eval mode."""
    args = run.args
    rng = np.random.default_rng(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    opt, sched = training.one_cycle(net.parameters(), args.lr, args.steps, weight_decay=0.01)
    pool = pool.to(run.device)
    curve = []
    net.train()
    for step in range(1, args.steps + 1):
        idx = torch.randint(len(pool), (args.batch_size,), generator=g)
        loss = loss_of(captions(said([scenes[i] for i in idx], rng)), pool[idx.to(run.device)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        run.step(step, loss.item())
        if args.save_every and step % args.save_every == 0 and step < args.steps:
            net.save_pretrained(args.out)  # to go on from with --resume, should the run stop
            run.say(f"saved step {step}")
        if args.curve and step % args.curve == 0:
            net.eval()
            curve.append(point(step))
            net.train()
            run.say(f"curve: {curve[-1]}")
    return net.eval(), curve


def width(text: str) -> int:
    """A GPT-2 width from the command line: a head per 32 channels (``A.gpt_config``)."""
    value = int(text)
    if value <= 0 or value % 32:
        raise argparse.ArgumentTypeError(f"{value} is not a positive multiple of 32")
    return value


def positive(text: str) -> float:
    """A weight from the command line: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number above 0")
    return value


# The training both token designs share (offline.train_masked trains on the same).
RECIPE = {
    "steps": 4500,
    "batch_size": 16,
    "lr": 1e-3,
    "seed": 0,
    "threads": 2,
    "pool": 40_000,
    "eval": 200,
    "device": "cpu",
}


def save_record(run: training.Run, entry: dict, curve: list, draw) -> None:
    """Saves ``entry`` (``run.record``) with the learning curve where ``--curve`` asked for one,
    and the judge's figures for ``draw``'s pictures (a function of captions) of ``--eval``
    held-out captions."""
    args = run.args
    if args.curve:
        entry["curve"] = curve  # its steps are this run's (a resumed one's start again at 1)
    if args.eval:
        prompts = evaluate.heldout_captions(args.eval)
        scores = evaluate.grade_pictures(draw(prompts), prompts)
        run.say("held-out captions: " + " ".join(f"{k} {v:.3f}" for k, v in scores.items()))
        entry["heldout"] = rounded(scores)
    run.save_record(entry)


def add_size_options(parser, width_: int, layers: int, what: str) -> None:
    """A new transformer's ``--width`` and ``--layers``, and ``--curve``."""
    parser.add_argument(
        "--width",
        type=width,
        default=width_,
        help=f"a new {what}'s width, a multiple of 32 (--resume: the saved one's)",
    )
    parser.add_argument("--layers", type=int, default=layers, help="its layers")
    parser.add_argument(
        "--curve",
        type=int,
        default=0,
        metavar="N",
        help=f"every N steps, grade {CURVE_CAPTIONS} held-out captions (the run's learning curve,"
        " kept in its record); 0: never",
    )


def main(argv=None) -> None:
    from diffusers import VQModel
    from transformers import GPT2LMHeadModel

    parser = training.arguments(__doc__, out=A.WEIGHTS, **RECIPE, resume="the GPT-2")
    add_size_options(parser, A.GPT["n_embd"], A.GPT["n_layer"], "GPT-2")
    training.add_options(parser, save_every=1000)
    parser.add_argument(
        "--context-weight",
        type=positive,
        default=1.0,
        metavar="W",
        help="weigh W times the image tokens whose token to the left or above is a shape's"
        " (A.after_shape: known before the token, so the odds learnt stay the pictures');"
        " 1: every token the same",
    )
    args = parser.parse_args(argv)
    run = training.Run(args, "gpt")
    vq = VQModel.from_pretrained(args.out / "vqvae", local_files_only=True).to(run.device).eval()
    tokenizer = D.write_tokenizer(args.out / "tokenizer")
    rng = np.random.default_rng(args.seed)
    scenes = [world.sample_scene(rng, "train") for _ in range(args.pool)]
    pool = A.encode_scenes(vq, scenes)
    run.say(f"encoded {len(scenes)} pictures; {len(pool.unique())} codes in use")
    if args.resume:
        gpt = GPT2LMHeadModel.from_pretrained(args.out, dtype=torch.float32, local_files_only=True)
    else:
        gpt = GPT2LMHeadModel(A.gpt_config(len(tokenizer), args.width, args.layers))
        grid_positions(gpt)
    gpt = gpt.to(run.device)

    # The entries shapes are drawn with, for --context-weight (a few seconds on 2,000 pictures).
    shape = None
    if args.context_weight != 1:
        shape = A.shape_codes(*A.tokens_and_drawn(vq, scenes[:2000])).to(run.device)

    def loss_of(texts, codes):
        prompt = A.prompt_ids(tokenizer, texts).to(run.device)
        if shape is None:
            return image_loss(gpt, prompt, codes, len(tokenizer))
        weights = 1 + (args.context_weight - 1) * A.after_shape(codes, shape)
        return image_loss(gpt, prompt, codes, len(tokenizer), weights)

    gpt, curve = train(
        gpt, pool, scenes, run, loss_of, lambda step: curve_point(gpt, vq, tokenizer, step)
    )
    gpt.save_pretrained(args.out)
    entry = run.record(
        width=gpt.config.n_embd, layers=gpt.config.n_layer, context_weight=args.context_weight
    )
    save_record(run, entry, curve, lambda prompts: A.draw(A.Model(gpt, vq, tokenizer), prompts))


if __name__ == "__main__":
    main()
