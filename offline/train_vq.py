"""Train the autoregressive model's image tokenizer: ``python -m offline.train_vq``.

A diffusers ``VQModel`` (``offline.autoregressive.VQ``) learns to turn 64×64 pictures of
``split="train"`` scenes into a 16×16 grid of codebook entries and back: the same shape-weighted
L1 loss as the diffusion model's autoencoder (``offline.train_vae.pixel_weights``) plus the
quantizer's commitment loss. Two things keep the codebook for the shapes, where the transformer
needs it (``../shared/offline-findings.md`` §3: 85% of the tokens are flat background, and one
flat background was spread over 22 entries a picture, near-synonyms the transformer had to guess
between):

- ``--flat`` weighs a loss on how far the encoder's outputs over a picture's flat background
  (the cells where nothing is drawn) are from their mean: one flat colour, one output, one entry;
- entries nobody has used for a while are moved onto encoder outputs of the current batch where
  a shape is, not where the background is.

Held-out reconstructions are graded by the judge at the end, with the entries a flat background
takes (``background_codes``). ``--resume --decoder-only`` trains the decoder alone, as
``train_vae`` does for the diffusion model: the encoder and the codebook, and so the tokens a
transformer has learnt to write, stay exactly as they are.

Writes ``<out>/vqvae/`` and the ``vq`` entry of ``<out>/training.json``. Run it before
``offline.train_ar``.
"""

from __future__ import annotations

import numpy as np
import torch

from offline import autoregressive as A
from offline import diffusion as D
from offline import evaluate, training, world
from offline import judge as J
from offline.train_vae import decoding_half, pixel_weights, scenes

EVAL_SEED = 40_000
RESTART_EVERY = 100  # steps between moving unused codebook entries


def build():
    from diffusers import VQModel

    return VQModel(**A.VQ)


def background_spread(h: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
    """How far each picture's encoder outputs ``h`` [N, C, GRID, GRID] over its flat background
    (the cells ``shapes`` leaves free: ``A.drawn_cells``) are from their own mean: their mean
    squared distance, as a share of the variance of all outputs, so that shrinking every output
    does not lower it."""
    free = (~shapes).unsqueeze(1).float()
    count = free.sum(dim=(2, 3), keepdim=True).clamp(min=1)
    mean = (h * free).sum(dim=(2, 3), keepdim=True) / count
    spread = (((h - mean) ** 2) * free).sum(dim=(1, 2, 3)).div(count.flatten()).mean()
    return spread / (h.var(dim=(0, 2, 3)).sum() + 1e-8)


def restart_unused(vq, used: torch.Tensor, h: torch.Tensor, shapes: torch.Tensor, g) -> int:
    """Moves every entry not in ``used`` onto a random encoder output of ``h`` where ``shapes``
    says a shape is; how many moved."""
    dead = (~used).nonzero().flatten()
    if len(dead):
        vectors = h.detach().permute(0, 2, 3, 1)[shapes]
        pick = torch.randint(len(vectors), (len(dead),), generator=g).to(vectors.device)
        vq.quantize.embedding.weight.data[dead] = vectors[pick].float()
    return len(dead)


def train(vq, run: training.Run) -> None:
    args = run.args
    rng = np.random.default_rng(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    trained = decoding_half(vq) if args.decoder_only else list(vq.parameters())
    opt, sched = training.one_cycle(trained, args.lr, args.steps)
    used = torch.zeros(A.CODES, dtype=torch.bool, device=run.device)
    vq.train()
    for step in range(1, args.steps + 1):
        pictures = D.draw_batch(scenes(rng, args.batch_size, "train"), scale=1)
        x = D.to_pixels(pictures).to(run.device)
        shapes = A.drawn_cells(pictures).to(run.device)
        # bfloat16 convolutions where fast, as in train_vae; the codebook lookup and the loss
        # stay fp32, so nearest-entry distances are not rounded.
        with training.low_precision(run.device), torch.set_grad_enabled(not args.decoder_only):
            h = vq.encode(x).latents
        quant, commit, (_, _, codes) = vq.quantize(h.float())
        with training.low_precision(run.device):
            recon = vq.decode(quant, force_not_quantize=True).sample
        loss = ((recon.float() - x).abs() * pixel_weights(x)).mean()
        parts = {}
        if not args.decoder_only:  # else the encoder and the codebook, what these move, stay
            parts = {"commitment": commit, "flat": background_spread(h.float(), shapes)}
            loss = loss + commit + args.flat * parts["flat"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        used[codes.flatten()] = True
        restarting = not args.decoder_only and step <= args.steps * 3 // 4
        if restarting and step % RESTART_EVERY == 0:
            moved = restart_unused(vq, used, h, shapes, g)
            run.say(f"{A.CODES - moved} codes in use; moved {moved}")
            used[:] = False
        run.step(step, loss.item(), **{name: part.item() for name, part in parts.items()})
    vq.eval()


def background_codes(codes: torch.Tensor, shapes: torch.Tensor) -> float:
    """How many different entries a picture's flat background takes, on average: the
    near-synonyms the transformer must guess between where one would do. ``codes`` [N, 256]."""
    free = ~shapes.flatten(1)
    return float(np.mean([len(c[f].unique()) for c, f in zip(codes, free, strict=True)]))


@torch.no_grad()
def reconstruction_scores(vq, n: int, seed: int = EVAL_SEED) -> dict[str, float]:
    """The judge's accuracy on held-out pictures encoded to tokens and decoded, their PSNR, the
    background entry count, and how often a pair comes back bound right (``evaluate.grade``):
    the ceiling for the transformer's own figures."""
    sampled = scenes(np.random.default_rng(seed), n, "heldout")
    images = D.draw_batch(sampled, scale=1)
    codes = torch.cat([A.encode(vq, images[i : i + 100]) for i in range(0, n, 100)])
    recon = np.concatenate([A.decode(vq, codes[i : i + 100]) for i in range(0, n, 100)])
    mse = np.mean((recon.astype(np.float64) - images) ** 2)
    labels = {k: np.array([world.labels(s)[k] for s in sampled]) for k in world.HEADS}
    pred = J.load().predict(recon)
    accuracy = J.accuracy(pred, labels)
    bound = evaluate.grade(pred, [world.caption(s) for s in sampled])["bound"]
    return {
        "psnr": round(float(10 * np.log10(255**2 / mse)), 2),
        "background_codes": round(background_codes(codes, A.drawn_cells(images)), 1),
        "codes_in_use": len(codes.unique()),
    } | {k: round(v, 4) for k, v in {**accuracy, "bound": bound}.items()}


def main(argv=None) -> None:
    from diffusers import VQModel

    parser = training.arguments(
        __doc__, out=A.WEIGHTS, steps=3000, batch_size=32, lr=2e-3, seed=0, threads=2, device="cpu"
    )
    parser.add_argument("--eval-size", type=int, default=500, help="pictures to grade")
    parser.add_argument(
        "--flat", type=float, default=1.0, help="weight of the flat-background loss"
    )
    training.add_options(
        parser, resume="the tokenizer", decoder_only="the tokens (the encoder and the codebook)"
    )
    args = training.parse(parser, argv)
    run = training.Run(args, "vq")
    if args.resume:
        vq = VQModel.from_pretrained(args.out / "vqvae", local_files_only=True)
    else:
        vq = build()
    train(vq.to(run.device), run)
    vq = vq.cpu()  # graded and saved as the app loads it
    scores = reconstruction_scores(vq, args.eval_size)
    run.say("held-out reconstructions: " + " ".join(f"{k} {v}" for k, v in scores.items()))
    vq.save_pretrained(args.out / "vqvae")
    # The flat-background loss moves the encoder only: no part of a decoder-only run.
    flat = {} if args.decoder_only else {"flat": args.flat}
    run.save_record(run.record(**flat, heldout=scores))
    run.say(f"saved to {args.out / 'vqvae'}")


if __name__ == "__main__":
    main()
