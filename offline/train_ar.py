"""Train the autoregressive model's transformer: ``python -m offline.train_ar``.

Needs the image tokenizer from ``offline.train_vq`` in ``<out>/vqvae``. Draws a pool of
``split="train"`` scenes, turns each into its 256 image tokens once, then trains a GPT-2 from
scratch on caption + image sequences (``offline.autoregressive``): cross-entropy on the image
tokens only, the caption being what they are conditioned on. As for the diffusion model, each
step writes the captions afresh, a third of them loosened and one in ten empty (for guidance).

Writes the GPT-2 (``config.json``, ``model.safetensors``) and ``tokenizer/`` into ``<out>``, the
``gpt`` entry of ``training.json``, then grades held-out captions with the judge
(``python -m offline.evaluate autoregressive`` repeats that on its own).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from offline import autoregressive as A
from offline import diffusion as D
from offline import evaluate, training, world
from offline.train_diffusion import captions, said


def encode_pool(vq, scenes: list[world.Scene], batch: int = 200) -> torch.Tensor:
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
    """The cross-entropy of a picture's image tokens given its caption (``prompt``: caption ids
    and the begin-of-image token, from ``A.prompt_ids``; ``codes``: [N, 256] codebook entries):
    one sequence, the codes after the text vocabulary. transformers shifts the labels, so each
    position learns the token after it (teacher forcing); the caption's positions learn nothing."""
    ids = torch.cat([prompt, codes + text_vocab], dim=1)
    labels = ids.clone()
    labels[:, : prompt.shape[1]] = -100  # learn the picture, given the caption
    with training.low_precision():  # the loss itself is computed in float32
        return gpt(input_ids=ids, labels=labels).loss


def train(gpt, tokenizer, pool: torch.Tensor, scenes, run: training.Run):
    args = run.args
    rng = np.random.default_rng(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    opt, sched = training.one_cycle(gpt.parameters(), args.lr, args.steps, weight_decay=0.01)
    offset = len(tokenizer)
    gpt.train()
    for step in range(1, args.steps + 1):
        idx = torch.randint(len(pool), (args.batch_size,), generator=g)
        prompt = A.prompt_ids(tokenizer, captions(said([scenes[i] for i in idx], rng)))
        loss = image_loss(gpt, prompt, pool[idx], offset)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(gpt.parameters(), 1.0)
        opt.step()
        sched.step()
        run.step(step, loss.item())
    return gpt.eval()


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
        resume="the GPT-2",
    )
    args = parser.parse_args(argv)
    run = training.Run(args, "gpt")
    vq = VQModel.from_pretrained(args.out / "vqvae", local_files_only=True).eval()
    tokenizer = D.write_tokenizer(args.out / "tokenizer")
    rng = np.random.default_rng(args.seed)
    scenes = [world.sample_scene(rng, "train") for _ in range(args.pool)]
    pool = encode_pool(vq, scenes)
    run.say(f"encoded {len(scenes)} pictures; {len(pool.unique())} codes in use")
    if args.resume:
        gpt = GPT2LMHeadModel.from_pretrained(args.out, dtype=torch.float32, local_files_only=True)
    else:
        gpt = GPT2LMHeadModel(A.gpt_config(len(tokenizer)))
        grid_positions(gpt)
    gpt = train(gpt, tokenizer, pool, scenes, run)
    gpt.save_pretrained(args.out)
    entry = run.record()
    if args.eval:
        model = A.Model(gpt, vq, tokenizer)
        prompts = evaluate.heldout_captions(args.eval)
        scores = evaluate.grade_pictures(A.draw(model, prompts), prompts)
        run.say("held-out captions: " + " ".join(f"{k} {v:.3f}" for k, v in scores.items()))
        entry["heldout"] = {k: round(v, 4) for k, v in scores.items()}
    run.save_record(entry)


if __name__ == "__main__":
    main()
