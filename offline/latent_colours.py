"""The offline model's cheap live previews: each latent pixel's colour as a linear map of its
four channels, AUTOMATIC1111's "Approx cheap" idea, fit here once for the shipped autoencoder.

    .venv/bin/python -m offline.latent_colours    # writes weights/diffusion/vae/latent_colours.json

A decode by the autoencoder itself cost about 45% of a render's CPU time at the room's four
previews a second; this map costs a matrix product. The fit is least squares over drawn scenes
(the world the model draws), encoded by the autoencoder and scaled as the sampler's latents are,
against the pictures shrunk to the latents' size; it is written beside the autoencoder, with
its error on scenes it was not fit on.
"""

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F

from offline import diffusion, world

FILE = diffusion.WEIGHTS / "vae" / "latent_colours.json"


def pairs(vae, n, seed):
    """(latents as the sampler holds them, the pictures shrunk to their size), for n scenes."""
    rng = np.random.default_rng(seed)
    pixels = diffusion.to_pixels(diffusion.draw_batch([world.sample_scene(rng) for _ in range(n)]))
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mode() * vae.config.scaling_factor
    return latents, F.adaptive_avg_pool2d(pixels, latents.shape[-2:])


def rows(latents):
    """One row per latent pixel: its channels and a 1 for the bias."""
    flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    return torch.cat([flat, torch.ones(len(flat), 1)], 1)


def fit(vae, n=256, seed=0, held_out=64):
    latents, small = pairs(vae, n, seed)
    weights = torch.linalg.lstsq(rows(latents), small.permute(0, 2, 3, 1).reshape(-1, 3)).solution
    test_latents, test_small = pairs(vae, held_out, seed + 1)
    predicted = (rows(test_latents) @ weights).clamp(-1, 1)
    target = test_small.permute(0, 2, 3, 1).reshape(-1, 3)
    error = float((predicted - target).abs().mean() * 127.5)  # in 0-255 levels
    baseline = float((target.mean(0) - target).abs().mean() * 127.5)
    return weights, error, baseline


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(diffusion.WEIGHTS / "vae", local_files_only=True).eval()
    weights, error, baseline = fit(vae, args.scenes, args.seed)
    FILE.write_text(
        json.dumps(
            {
                "weights": [[round(float(v), 6) for v in row] for row in weights],
                "rows": "the latent channels, then 1 (the bias); columns: R, G, B in [-1, 1]",
                "fit_on": f"{args.scenes} drawn scenes, seed {args.seed}",
                "mean_error_levels": round(error, 1),
                "mean_colour_error_levels": round(baseline, 1),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {FILE}: mean error {error:.1f} of 255 (one mean colour: {baseline:.1f})")


if __name__ == "__main__":
    main()
