"""Live previews: a running render's latents decoded, between denoising steps, into a small
WebP for the whole room, by a decoder far cheaper than the model's own.

Real models use TAESD (diffusers' AutoencoderTiny, generation/taesd.py). It loads with
`from_pretrained` from a folder under PARTYHUB_MODELS_DIR named after it (`taesd`, `taesdxl`) or
from its hub id in the local cache, never downloaded; a preset whose decoder is on neither, or
does not load, renders without previews. The bundled offline model has no TAESD: its previews
are a linear map of the latents' channels to colours (AUTOMATIC1111's "Approx cheap"), fit once
for its autoencoder (offline/latent_colours.py), where a decode by that autoencoder cost about
45% of a render. A clip-guided render's frames are its pictures themselves (`Pixels`).
"""

import base64
import io
import json
import logging
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings

from generation import taesd

log = logging.getLogger(__name__)

PREVIEW_SIDE = 192  # pixels on the longest side: enough to see a picture form, a few KB
PREVIEW_QUALITY = 60


def get_decoder(preset):
    """The preset's preview decoder, loaded once per process; None when it has none."""
    if not settings.PARTYHUB_PREVIEWS:
        return None
    if preset.family == "clip-guided":
        return Pixels()
    if preset.previews_from_latents:
        from generation.pipelines import get_pipeline

        vae = get_pipeline(preset).vae
        return LatentColours.beside(vae) or OwnAutoencoder(vae)
    return taesd.tiny_decoder(preset)


class LatentColours:
    """Each latent pixel's colour as a linear map of its channels (and a bias), scaled up to the
    image's size: what a picture forming looks like, for the price of a matrix product."""

    FILE = "latent_colours.json"

    def __init__(self, weights, scale, device):
        import torch

        self.weights = torch.tensor(weights, dtype=torch.float32, device=device)
        self.scale, self.device, self.dtype = scale, device, torch.float32

    @classmethod
    def beside(cls, vae):
        """The map shipped beside this autoencoder's weights, or None."""
        path = Path(vae.config._name_or_path) / cls.FILE
        if not path.is_file():
            log.info("no %s beside %s: previews decode with the autoencoder", cls.FILE, path.parent)
            return None
        scale = 2 ** (len(vae.config.block_out_channels) - 1)
        return cls(json.loads(path.read_text())["weights"], scale, vae.device)

    def decode(self, latents):
        import torch
        import torch.nn.functional as F

        colours = torch.einsum("bchw,cr->brhw", latents.float(), self.weights[:-1])
        colours = colours + self.weights[-1].view(1, 3, 1, 1)
        return SimpleNamespace(
            sample=F.interpolate(colours, scale_factor=self.scale, mode="bilinear")
        )


class Pixels:
    """A clip-guided render decodes its picture at every step anyway: its progress frames come
    as pixels (in [-1, 1]), and the preview is the picture itself."""

    def __init__(self):
        import torch

        self.device, self.dtype = "cpu", torch.float32

    def decode(self, pixels):
        return SimpleNamespace(sample=pixels)


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
