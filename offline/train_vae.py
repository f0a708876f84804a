"""Train the offline diffusion model's autoencoder: ``python -m offline.train_vae``.

An ``AutoencoderKL`` (config ``offline.diffusion.VAE``) learns to squeeze 128×128 pictures of
``split="train"`` scenes into 16×16×4 latents and back: an L1 reconstruction loss plus Stable
Diffusion's tiny KL weight, which keeps the latents a smooth, roughly Gaussian space for the UNet
without blurring them. Afterwards the latent scaling factor is measured (one over the standard
deviation of the latents, as for Stable Diffusion's 0.18215) and the reconstructions of held-out
pictures are graded by the judge: the ceiling for anything drawn through this decoder.

Writes ``<out>/vae/`` and the ``vae`` entry of ``<out>/training.json``. Run it before
``offline.train_diffusion``, which reads the VAE from the same folder.
"""

from __future__ import annotations

import numpy as np
import torch

from offline import diffusion as D
from offline import evaluate, training, world
from offline import judge as J

KL_WEIGHT = 1e-6  # Stable Diffusion's
FOREGROUND = 8.0
EVAL_SEED = 30_000


def build():
    from diffusers import AutoencoderKL

    return AutoencoderKL(**D.VAE)


def scenes(rng: np.random.Generator, n: int, split: str) -> list[world.Scene]:
    return [world.sample_scene(rng, split) for _ in range(n)]


def pixel_weights(x: torch.Tensor) -> torch.Tensor:
    """FOREGROUND times the weight on pixels that are not the background
    (``training.background``): shapes cover a tenth of a picture, and an even loss learns the
    backgrounds long before them."""
    foreground = (x - training.background(x)).abs().amax(dim=1, keepdim=True) > 0.1
    return 1 + (FOREGROUND - 1) * foreground.float()


def crops(x: torch.Tensor, rng: np.random.Generator, side: int) -> torch.Tensor:
    """A random ``side``×``side`` window of each picture. The autoencoder is convolutional, so
    it learns the same from windows; a 64×64 one costs a quarter of the whole picture and still
    holds most of a scene, so the same time buys four times the pictures."""
    if side >= x.shape[-1]:
        return x
    # On the latent grid (multiples of 8), so windows line up with the cells the encoder makes.
    starts = rng.integers(0, (x.shape[-1] - side) // 8 + 1, size=(len(x), 2)) * 8
    return torch.stack(
        [img[:, y : y + side, x0 : x0 + side] for img, (y, x0) in zip(x, starts, strict=True)]
    )


def decoding_half(vae) -> list[torch.nn.Parameter]:
    """The parameters of an autoencoder (this one, or ``train_vq``'s tokenizer) that turn
    latents into pictures: what ``--decoder-only`` trains. The encoder, and so the latents the
    UNet or the tokens the transformer learnt to draw in, stays as it is."""
    return [*vae.post_quant_conv.parameters(), *vae.decoder.parameters()]


def train(vae, run: training.Run) -> None:
    args = run.args
    rng = np.random.default_rng(args.seed)
    trained = decoding_half(vae) if args.decoder_only else list(vae.parameters())
    opt, sched = training.one_cycle(trained, args.lr, args.steps)
    vae.train()
    for step in range(1, args.steps + 1):
        x = crops(D.to_pixels(D.draw_batch(scenes(rng, args.batch_size, "train"))), rng, args.crop)
        # bfloat16 where the CPU is fast at it (training.low_precision); the loss stays fp32.
        with training.low_precision():
            with torch.set_grad_enabled(not args.decoder_only):
                posterior = vae.encode(x).latent_dist
            recon = vae.decode(posterior.mode()).sample
        error = (recon.float() - x).abs() * pixel_weights(x)
        loss = error.mean() + KL_WEIGHT * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run.step(step, loss.item())
        if args.save_every and step % args.save_every == 0 and step < args.steps:
            vae.save_pretrained(args.out / "vae")
            run.say(f"saved step {step}")
    vae.eval()


@torch.no_grad()
def pin_posterior(vae) -> None:
    """Give the posterior no spread: the decoder learnt from its mean, and the pipelines that
    encode pictures (img2img, inpaint) sample from it. Trained only by the tiny KL term, its
    log-variance sat near 0, a standard deviation of 1 against latents of about 2: redraws
    came back blurred and inpainting repainted the whole picture. The spread comes from the
    last 1×1 convolution's log-variance half; -30 is where diffusers clamps it."""
    conv = vae.quant_conv
    half = vae.config.latent_channels
    conv.weight[half:] = 0
    conv.bias[half:] = -30.0


@torch.no_grad()
def scaling_factor(vae, n: int, seed: int = EVAL_SEED) -> float:
    x = D.to_pixels(D.draw_batch(scenes(np.random.default_rng(seed), n, "train")))
    return float(1.0 / vae.encode(x).latent_dist.mode().std())


@torch.no_grad()
def reconstruction_scores(vae, n: int, seed: int = EVAL_SEED + 1) -> dict[str, float]:
    """The judge's accuracy on reconstructions of held-out pictures, their PSNR, and how often
    a pair of two different objects comes back bound right (``evaluate.grade``): the ceiling
    for the diffusion model's own figure."""
    sampled = scenes(np.random.default_rng(seed), n, "heldout")
    images = D.draw_batch(sampled)
    recon = np.concatenate(
        [
            D.to_images(
                vae.decode(vae.encode(D.to_pixels(images[i : i + 50])).latent_dist.mode()).sample
            )
            for i in range(0, n, 50)
        ]
    )
    mse = np.mean((recon.astype(np.float64) - images) ** 2)
    labels = {k: np.array([world.labels(s)[k] for s in sampled]) for k in world.HEADS}
    pred = J.load().predict(D.to_judge(recon))
    accuracy = J.accuracy(pred, labels)
    bound = evaluate.grade(pred, [world.caption(s) for s in sampled])["bound"]
    return {"psnr": round(float(10 * np.log10(255**2 / mse)), 2)} | {
        k: round(v, 4) for k, v in {**accuracy, "bound": bound}.items()
    }


def main(argv=None) -> None:
    parser = training.arguments(
        __doc__, out=D.WEIGHTS, steps=3000, batch_size=32, lr=2e-3, seed=0, threads=2
    )
    parser.add_argument("--crop", type=int, default=64, help="train on windows this wide")
    training.add_options(parser, save_every=500)
    parser.add_argument("--eval-size", type=int, default=500, help="pictures to measure on")
    training.add_options(
        parser,
        resume="the autoencoder",
        decoder_only="the latents the diffusion model was trained on",
    )
    args = training.parse(parser, argv)
    run = training.Run(args, "vae")
    if args.resume:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(args.out / "vae", local_files_only=True)
    else:
        vae = build()
    train(vae, run)
    # Kept in float16 as the rest of the pipeline is (half the bytes), and graded as kept.
    vae.half().float()
    if not args.decoder_only:  # else the encoder, its posterior and its scale are unchanged
        pin_posterior(vae)
        vae.register_to_config(scaling_factor=round(scaling_factor(vae, args.eval_size), 5))
    run.say(f"scaling factor {vae.config.scaling_factor}")
    scores = reconstruction_scores(vae, args.eval_size)
    run.say("held-out reconstructions: " + " ".join(f"{k} {v}" for k, v in scores.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    vae.half().save_pretrained(args.out / "vae")
    run.save_record(run.record(scaling_factor=vae.config.scaling_factor, heldout=scores))
    run.say(f"saved to {args.out / 'vae'}")


if __name__ == "__main__":
    main()
