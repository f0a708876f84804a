"""What a CUDA worker turns on for speed, each a choice stated in the settings.

- Convolutions in NHWC (`channels_last`), which tensor cores run faster, and cuDNN's benchmark
  mode, which times the convolution algorithms once per input shape and keeps the fastest.
- Fused QKV: diffusers' `fuse_qkv_projections` makes each attention's three projections one
  matmul (the UNet's and the VAE's), where the pipeline offers it.
- PARTYHUB_COMPILE: `torch.compile` of the UNet with static shapes, and batches padded up to a
  few bucket sizes (`bucket`), so it compiles once per bucket and never again for a batch of 5
  after one of 4.
- PARTYHUB_FINAL_DECODER: the full VAE (quality) or the preset's TAESD (speed, e.g. for streams)
  decodes the final images (`final_decoder`).

On the CPU none of this applies: renders there are what the tests and `make run` pin down.
"""

from django.conf import settings

from generation import taesd

# Enough compiled graphs for every bucket, with and without classifier-free guidance (which
# doubles the rows), at a few image sizes; torch's default of 8 would fall back to eager.
COMPILED_SHAPES = 64


def prepare(pipe):
    """Tune a diffusion pipeline just moved to the GPU, as the settings ask."""
    import torch

    torch.backends.cudnn.benchmark = True
    for name in ("unet", "vae"):
        getattr(pipe, name).to(memory_format=torch.channels_last)
    if hasattr(pipe, "fuse_qkv_projections"):
        pipe.fuse_qkv_projections()
    if settings.PARTYHUB_COMPILE:
        limits = torch._dynamo.config  # `cache_size_limit` before torch 2.6 named it
        setattr(
            limits,
            "recompile_limit" if hasattr(limits, "recompile_limit") else "cache_size_limit",
            COMPILED_SHAPES,
        )
        pipe.unet = torch.compile(pipe.unet, mode="max-autotune-no-cudagraphs", dynamic=False)
    return pipe


def bucket(images):
    """The batch size a pass of `images` images runs at: as it is, or with PARTYHUB_COMPILE the
    next power of two (capped at PARTYHUB_MAX_BATCH), so that a compiled UNet sees few shapes.
    The rows added are copies of the last image, dropped after the pass."""
    if not settings.PARTYHUB_COMPILE or settings.PARTYHUB_DEVICE != "cuda":
        return images
    size = 1
    while size < images:
        size *= 2
    return max(images, min(size, settings.PARTYHUB_MAX_BATCH))


def final_decoder(preset, pipe):
    """What decodes the final latents: the pipeline's own VAE, or with PARTYHUB_FINAL_DECODER
    "tiny" the preset's TAESD (the previews' decoder, loaded once). A preset without a TAESD on
    disk decodes with its VAE, as the system check at startup warns."""
    if settings.PARTYHUB_FINAL_DECODER == "tiny":
        tiny = taesd.tiny_decoder(preset)
        if tiny is not None:
            return tiny
    return pipe.vae
