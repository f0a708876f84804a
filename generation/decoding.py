"""From final latents to PIL images, with the checks a GPU needs: a half-precision VAE can
overflow into NaN (SDXL's is known to) and a broken decode gives flat images. Such output is
decoded again with the VAE in float32, and refused if it is still bad, never saved."""

import logging

from generation.errors import BadOutput

log = logging.getLogger(__name__)


def decode(pipe, latents):
    """PIL images and the safety checker's flags (None without a checker) for a batch."""
    pixels = _decode(pipe, latents, float32=False)
    if not looks_valid(pixels):
        log.warning("decoded images are NaN or flat; decoding again with the VAE in float32")
        pixels = _decode(pipe, latents, float32=True)
        if not looks_valid(pixels):
            raise BadOutput()
    flags = None
    if getattr(pipe, "safety_checker", None) is not None:
        pixels, flags = pipe.run_safety_checker(pixels, pixels.device, latents.dtype)
    return to_pil(pixels, pipe.image_processor), flags


def to_pil(pixels, image_processor):
    """A decoded batch (values in [-1, 1]) as PIL images."""
    return image_processor.postprocess(pixels, output_type="pil")


def looks_valid(pixels):
    """Every value finite and no image a single flat colour."""
    import torch

    if not torch.isfinite(pixels).all():
        return False
    flat = pixels.flatten(1)
    return bool(((flat.amax(dim=1) - flat.amin(dim=1)) > 1e-3).all())


def _decode(pipe, latents, float32):
    import torch

    vae = pipe.vae
    dtype = torch.float32 if float32 else vae.dtype
    original = vae.dtype
    if dtype != original:
        vae.to(dtype)
    latents = latents.to(dtype)
    mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
    if mean is not None and std is not None:  # VAEs with normalised latents, as diffusers does
        shape = (1, len(mean), 1, 1)
        mean = torch.tensor(mean).view(shape).to(latents.device, dtype)
        std = torch.tensor(std).view(shape).to(latents.device, dtype)
        latents = latents * std / vae.config.scaling_factor + mean
    else:
        latents = latents / vae.config.scaling_factor
    try:
        with torch.no_grad():
            return vae.decode(latents).sample
    finally:
        if dtype != original:
            vae.to(original)
