"""Live previews: a running render's latents decoded by TAESD (diffusers' AutoencoderTiny), a
decoder small enough to run between denoising steps, into a small WebP for the whole room.

The decoder loads with `from_pretrained` from a folder under PARTYHUB_MODELS_DIR named after it
(`taesd`, `taesdxl`) or from its hub id in the local cache, never downloaded; a preset whose
decoder is on neither, or does not load, renders without previews. The bundled offline model
needs none: its own autoencoder is as small.
"""

import base64
import io
import logging
import threading
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

PREVIEW_SIDE = 192  # pixels on the longest side: enough to see a picture form, a few KB
PREVIEW_QUALITY = 60

_decoders = {}
_lock = threading.Lock()


def get_decoder(preset):
    """The preset's preview decoder, loaded once per process; None when it has none."""
    if not settings.PARTYHUB_PREVIEWS:
        return None
    if preset.previews_from_vae:
        from generation.pipelines import get_pipeline

        return OwnAutoencoder(get_pipeline(preset).vae)
    if not preset.preview_decoder:
        return None
    with _lock:
        if preset.preview_decoder not in _decoders:
            _decoders[preset.preview_decoder] = _load(preset)
        return _decoders[preset.preview_decoder]


def _load(preset):
    import torch
    from diffusers import AutoencoderTiny

    from generation.presets import in_hub_cache

    folder_name, hub_id = preset.preview_decoder
    folder = Path(settings.PARTYHUB_MODELS_DIR) / folder_name
    if (folder / "config.json").exists():
        source = folder
    elif hub_id and in_hub_cache(hub_id, "config.json"):
        source = hub_id
    else:
        log.info(
            "no preview decoder for %s (%s, %s): renders go without previews; fetch it once "
            "with `hf download %s --local-dir %s`",
            preset.name,
            folder,
            hub_id,
            hub_id,
            folder,
        )
        return None
    try:
        # local_files_only: a decoder cached in part (its config, not its weights) fails here
        # instead of fetching the rest.
        decoder = AutoencoderTiny.from_pretrained(
            source, dtype=getattr(torch, settings.PARTYHUB_DTYPE), local_files_only=True
        )
    except OSError as exc:
        # Previews are an extra: a broken decoder costs the renders their previews, not the
        # renders themselves.
        log.error("preview decoder %s did not load (%s): renders go without previews", source, exc)
        return None
    return decoder.to(settings.PARTYHUB_DEVICE).eval()


class OwnAutoencoder:
    """A model's own AutoencoderKL behind TAESD's interface: `decode` takes the sampler's
    latents as they are (TAESD's scaling factor is 1; an AutoencoderKL's is not)."""

    def __init__(self, vae):
        self.vae = vae
        self.device, self.dtype = vae.device, vae.dtype

    def decode(self, latents):
        return self.vae.decode(latents / self.vae.config.scaling_factor)


def data_urls(decoder, latents):
    """Each image of a batch of latents as a `data:image/webp;base64,...` URL, decoded in one
    call."""
    import torch
    from PIL import Image

    with torch.no_grad():
        pixels = decoder.decode(latents.to(decoder.device, decoder.dtype)).sample
    # AutoencoderTiny decodes to [-1, 1].
    arrays = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu()
    urls = []
    for array in arrays.numpy():
        image = Image.fromarray(array)
        image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
        buffer = io.BytesIO()
        image.save(buffer, format="WEBP", quality=PREVIEW_QUALITY)
        urls.append("data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode())
    return urls
