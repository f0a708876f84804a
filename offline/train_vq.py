"""Train the autoregressive model's image tokenizer: ``python -m offline.train_vq``.

A diffusers ``VQModel`` (``offline.autoregressive.VQ``) learns to turn 64×64 pictures of
``split="train"`` scenes into an 8×8 grid of codebook entries and back: the same shape-weighted
L1 loss as the diffusion model's autoencoder (``offline.train_vae.pixel_weights``) plus the
quantizer's commitment loss. Codebook entries nobody has used for a while are moved onto encoder
outputs of the current batch, so the codebook does not shrink to a few favourites. Held-out
reconstructions are graded by the judge at the end.

Writes ``<out>/vqvae/`` and the ``vq`` entry of ``<out>/training.json``. Run it before
``offline.train_ar``.
"""

from __future__ import annotations

import numpy as np
import torch

from offline import autoregressive as A
from offline import diffusion as D
from offline import judge as J
from offline import training, world
from offline.train_vae import pixel_weights, scenes

EVAL_SEED = 40_000
RESTART_EVERY = 100  # steps between moving unused codebook entries


def build():
    from diffusers import VQModel

    return VQModel(**A.VQ)


def restart_unused(vq, used: torch.Tensor, h: torch.Tensor, g: torch.Generator) -> int:
    """Moves every entry not in ``used`` onto a random encoder output of ``h``; how many moved."""
    dead = (~used).nonzero().flatten()
    if len(dead):
        vectors = h.detach().permute(0, 2, 3, 1).reshape(-1, h.shape[1])
        pick = torch.randint(len(vectors), (len(dead),), generator=g)
        vq.quantize.embedding.weight.data[dead] = vectors[pick].float()
    return len(dead)


def train(vq, run: training.Run) -> None:
    args = run.args
    rng = np.random.default_rng(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    opt, sched = training.one_cycle(vq.parameters(), args.lr, args.steps)
    used = torch.zeros(A.CODES, dtype=torch.bool)
    vq.train()
    for step in range(1, args.steps + 1):
        x = D.to_pixels(D.draw_batch(scenes(rng, args.batch_size, "train"), scale=1))
        # bfloat16 convolutions where fast, as in train_vae; the codebook lookup and the loss
        # stay fp32, so nearest-entry distances are not rounded.
        with training.low_precision():
            h = vq.encode(x).latents
        quant, commit, (_, _, codes) = vq.quantize(h.float())
        with training.low_precision():
            recon = vq.decode(quant, force_not_quantize=True).sample
        loss = ((recon.float() - x).abs() * pixel_weights(x)).mean() + commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        used[codes.flatten()] = True
        if step % RESTART_EVERY == 0 and step <= args.steps * 3 // 4:
            moved = restart_unused(vq, used, h, g)
            run.say(f"{A.CODES - moved} codes in use; moved {moved}")
            used[:] = False
        run.step(step, loss.item())
    vq.eval()


@torch.no_grad()
def reconstruction_scores(vq, n: int, seed: int = EVAL_SEED) -> dict[str, float]:
    sampled = scenes(np.random.default_rng(seed), n, "heldout")
    images = D.draw_batch(sampled, scale=1)
    recon = np.concatenate(
        [A.decode(vq, A.encode(vq, images[i : i + 100])) for i in range(0, n, 100)]
    )
    mse = np.mean((recon.astype(np.float64) - images) ** 2)
    labels = {k: np.array([world.labels(s)[k] for s in sampled]) for k in world.HEADS}
    accuracy = J.accuracy(J.load().predict(recon), labels)
    return {"psnr": round(float(10 * np.log10(255**2 / mse)), 2)} | {
        k: round(v, 4) for k, v in accuracy.items()
    }


def main(argv=None) -> None:
    parser = training.arguments(
        __doc__, out=A.WEIGHTS, steps=3000, batch_size=32, lr=2e-3, seed=0, threads=2
    )
    parser.add_argument("--eval-size", type=int, default=500, help="pictures to grade")
    args = parser.parse_args(argv)
    run = training.Run(args, "vq")
    vq = build()
    train(vq, run)
    scores = reconstruction_scores(vq, args.eval_size)
    run.say("held-out reconstructions: " + " ".join(f"{k} {v}" for k, v in scores.items()))
    vq.save_pretrained(args.out / "vqvae")
    run.save_record(run.record(heldout=scores))
    run.say(f"saved to {args.out / 'vqvae'}")


if __name__ == "__main__":
    main()
