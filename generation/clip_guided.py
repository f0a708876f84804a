"""CLIP-guided images, the VQGAN+CLIP way (Katherine Crowson's 2021 notebook): no model here has
learned to draw from text. A picture is a grid of a VQ autoencoder's latents, decoded to pixels;
CLIP looks at randomly cut, shifted and noised copies of it (so that no one pixel pattern can
fool it), and Adam moves the latents a step towards CLIP's embedding of the prompt and away from
the negative prompt's. The latents are snapped to the nearest codebook entries at every step
(the gradient passed straight through), so every step is a picture the autoencoder can draw, and
each is a progress frame: the room watches the picture itself form.

A clip-guided model is a folder holding `clip_guided.json` (`CONFIG_FILE`), whose paths are
relative to the folder:

    {"vq": "vqvae",                           a diffusers VQModel folder
     "clip_model": "ViT-B-32",                an open_clip model name
     "clip_pretrained": "clip/model.safetensors",   its checkpoint (or a pretrained tag in
                                              the local Hugging Face cache)
     "clip_config": "",                       a model config JSON, for a model open_clip lacks
     "learning_rate": 0.05, "cutouts": 16, "crop": [0.7, 1.0], "noise": 0.1,
     "start_noise": 0.1, "anchor": 1.0}

The numbers are the recipe (`Recipe`), kept with the weights because what works depends on the
pair. The bundled `offline-clip-guided` folder points at the offline autoregressive model's VQ
tokenizer and the offline CLIP (docs/models.md, "CLIP-guided").

torch and open_clip are imported inside the functions, as in generation/pipelines.py.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from generation.errors import BadOutput, Cancelled, GpuOutOfMemory

log = logging.getLogger(__name__)

CONFIG_FILE = "clip_guided.json"  # what marks a folder of a clip-guided model
# What a clip-guided PNG says it sampled with: there is no sampler, the optimiser draws it.
SAMPLER = "Adam"


@dataclass(frozen=True)
class Recipe:
    learning_rate: float  # Adam's step size, in the latents' own units
    cutouts: int  # the augmented copies CLIP sees at each step, per image
    crop: tuple  # the smallest and largest side of a cutout, as fractions of the picture's
    noise: float  # the standard deviation of the noise added to each cutout (pixels in [0, 1])
    start_noise: float  # txt2img starts from mid-grey with noise of this deviation (likewise)
    # img2img: the weight of the latents' distance from the source image's, times (1 - strength),
    # beside CLIP's loss times strength (so strength 1 starts from the image and goes where CLIP
    # leads, and a strength near 0 keeps the image). Weights, not a ratio: nothing overflows.
    anchor: float


@dataclass
class Guided:
    """The parts of a loaded clip-guided model."""

    vq: object  # diffusers VQModel
    clip: object  # an open_clip model
    tokenizer: object  # its open_clip tokenizer
    recipe: Recipe
    mean: object  # CLIP's pixel normalisation, tensors of shape (1, 3, 1, 1)
    std: object

    @property
    def components(self):
        """By name, as a diffusers pipeline lists its parts (pipelines.weight_bytes)."""
        return {"vq": self.vq, "clip": self.clip}

    @property
    def scale(self):
        """Pixels per latent cell: one 2× downsampling between each two of the VQ's levels."""
        return 2 ** (len(self.vq.config.block_out_channels) - 1)


def read_config(folder):
    """The folder's `clip_guided.json` with its paths made absolute: (config, Recipe)."""
    folder = Path(folder)
    config = json.loads((folder / CONFIG_FILE).read_text())
    for key in ("vq", "clip_pretrained", "clip_config"):
        if config.get(key) and (folder / config[key]).exists():
            config[key] = str((folder / config[key]).resolve())
    recipe = Recipe(
        learning_rate=float(config["learning_rate"]),
        cutouts=int(config["cutouts"]),
        crop=tuple(float(side) for side in config["crop"]),
        noise=float(config["noise"]),
        start_noise=float(config["start_noise"]),
        anchor=float(config["anchor"]),
    )
    return config, recipe


def text_tokenizer(folder):
    """The CLIP's tokenizer alone (generation/tokens.py counts prompts with it): open_clip builds
    it from the model's config, no weights read."""
    import open_clip

    config, _ = read_config(folder)
    if config.get("clip_config"):
        open_clip.add_model_config(config["clip_config"])
    return open_clip.get_tokenizer(config["clip_model"])


def load(folder, device, dtype):
    """The VQModel by `from_pretrained` and the CLIP by open_clip, both from local files only."""
    import torch
    from diffusers import VQModel

    from generation.scoring import load_clip

    config, recipe = read_config(folder)
    log.info("loading clip-guided %s on %s", folder, device)
    vq = VQModel.from_pretrained(
        config["vq"], dtype=getattr(torch, dtype), local_files_only=True
    ).to(device)
    clip, preprocess, tokenizer = load_clip(
        config["clip_model"],
        config["clip_pretrained"],
        config.get("clip_config", ""),
        device,
        dtype,
    )
    if not hasattr(tokenizer, "encode"):
        # generation/tokens.py could not count its prompts, and open_clip would cut long ones.
        raise ValueError(f"{folder}: clip-guided needs a CLIP with open_clip's own tokenizer")
    for module in (vq.eval(), clip.eval()):
        module.requires_grad_(False)  # only the picture's latents learn
    mean, std = _normalisation(preprocess, device)
    return Guided(vq, clip, tokenizer, recipe, mean, std)


def _normalisation(preprocess, device):
    import torch

    (normalize,) = [step for step in preprocess.transforms if hasattr(step, "mean")]
    return (
        torch.tensor(normalize.mean, device=device).view(1, 3, 1, 1),
        torch.tensor(normalize.std, device=device).view(1, 3, 1, 1),
    )


def generate_slots(model, slots, on_step, should_stop):
    """pipelines.generate_batch for this family: every slot's picture optimised together, each
    from its own seed's start and cutouts, so a picture is the same alone or in a batch (up to
    the last bits of a batched convolution). `on_step(step, steps, pixels)` gets the pictures
    after each step (values in [-1, 1]); when `should_stop()` turns true the render ends at the
    next step and Cancelled is raised."""
    import torch

    first = slots[0].params
    width, height = first["width"], first["height"]
    if width % model.scale or height % model.scale:
        raise ValueError(
            f"{first['model']} draws pictures in cells of {model.scale} pixels; "
            f"{width}x{height} is not a whole number of them: its preset does not match the "
            "weights."
        )
    try:
        with torch.enable_grad():
            pixels = _optimise(model, slots, on_step, should_stop)
    except torch.cuda.OutOfMemoryError:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise GpuOutOfMemory() from None
    return _to_pil(pixels)


def _optimise(model, slots, on_step, should_stop):
    import torch

    params = slots[0].params
    steps, recipe = params["steps"], model.recipe
    generators = [torch.Generator().manual_seed(slot.seed) for slot in slots]
    z = _starting_latents(model, slots, generators)
    source = z.detach().clone() if params["mode"] == "img2img" else None
    targets = _text_targets(model, slots)
    low, high = _codebook_bounds(model.vq)
    optimiser = torch.optim.Adam([z], lr=recipe.learning_rate)
    for step in range(steps):
        pixels = _decode(model.vq, z)
        if step:
            on_step(step, steps, pixels.detach())
            if should_stop():
                raise Cancelled()
        loss = _clip_loss(model, pixels, targets, generators)
        if source is not None:
            strength = params["strength"]
            distance = (z - source).pow(2).mean(dim=(1, 2, 3)).sum()
            loss = strength * loss + (1 - strength) * recipe.anchor * distance
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            z.copy_(torch.maximum(torch.minimum(z, high), low))  # within the codebook's range
    with torch.no_grad():
        pixels = _decode(model.vq, z)
    on_step(steps, steps, pixels)
    return pixels


def _starting_latents(model, slots, generators):
    """The latents of the starting pictures. txt2img: mid-grey with noise drawn from each slot's
    seed (VQGAN+CLIP's "pixels" start). Its other start, codebook entries drawn at random,
    left the offline model in the colours it began with: grey leans nowhere, and the prompt's
    colours came through (docs/models.md). img2img: the source image, the same for every seed
    (the seeds still draw different cutouts, so the pictures part ways)."""
    import torch

    vq = model.vq
    params = slots[0].params
    if params["mode"] == "img2img":
        size = (params["width"], params["height"])  # the request may resize its source
        pixels = torch.stack([_as_tensor(slot.source, size) for slot in slots]) * 2 - 1
    else:
        shape = (3, params["height"], params["width"])
        noise = [torch.randn(shape, generator=generator) for generator in generators]
        pixels = torch.stack(noise) * model.recipe.start_noise * 2  # [0, 1] units, doubled
    with torch.no_grad():
        z = vq.encode(pixels.to(vq.device, vq.dtype)).latents
    return z.detach().clone().float().requires_grad_(True)


def _as_tensor(image, size):
    """An image at `size` as a float tensor [3, height, width] of values in [0, 1]."""
    import numpy as np
    import torch
    from PIL import Image

    image = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)


def _text_targets(model, slots):
    """Each slot's (prompt embedding, negative prompt embedding or None), normalised."""
    import torch

    texts = list(dict.fromkeys(t for slot in slots for t in (slot.prompt, slot.params["negative"])))
    with torch.no_grad():
        tokens = model.tokenizer(texts).to(model.vq.device)
        embedded = dict(zip(texts, _normalised(model.clip.encode_text(tokens)), strict=True))
    prompts = torch.stack([embedded[slot.prompt] for slot in slots])
    negatives = [
        embedded[slot.params["negative"]] if slot.params["negative"] else None for slot in slots
    ]
    return prompts, negatives


def _codebook_bounds(vq):
    book = vq.quantize.embedding.weight.float()
    return book.min(dim=0).values.view(1, -1, 1, 1), book.max(dim=0).values.view(1, -1, 1, 1)


def _decode(vq, z):
    """The picture of latents `z`, snapped to the codebook with the gradient passed straight
    through, and clipped to [-1, 1] likewise: a plain clamp would give a saturated colour (a
    pure red) no gradient, and the optimiser could never bring it back."""
    quantised, _, _ = vq.quantize(z.to(vq.dtype))
    quantised = z + (quantised.float() - z).detach()
    pixels = vq.decode(quantised.to(vq.dtype), force_not_quantize=True).sample.float()
    return pixels + (pixels.clamp(-1, 1) - pixels).detach()


def _clip_loss(model, pixels, targets, generators):
    """The mean spherical distance of each picture's cutouts to its prompt, less that to its
    negative prompt, summed over the pictures (each picture's gradient is its own)."""
    prompts, negatives = targets
    cutouts = _cutouts(model, pixels, generators)  # [images, cutouts, 3, side, side]
    count = cutouts.shape[1]
    normalised = ((cutouts.flatten(0, 1) + 1) / 2 - model.mean) / model.std
    embedded = _normalised(model.clip.encode_image(normalised.to(model.vq.dtype)))
    embedded = embedded.view(len(pixels), count, -1)
    loss = _spherical_distance(embedded, prompts[:, None]).mean(dim=1).sum()
    for n, negative in enumerate(negatives):
        if negative is not None:
            loss = loss - _spherical_distance(embedded[n], negative).mean()
    return loss


def _cutouts(model, pixels, generators):
    """Each picture's `recipe.cutouts` copies: a square crop of a random side (`recipe.crop` of
    the picture's shorter side) at a random place, resized to CLIP's input, plus noise; drawn
    from the picture's own generator. No flips: they would swap left and right, which prompts
    name."""
    import torch
    import torch.nn.functional as F

    recipe = model.recipe
    count, (low, high) = recipe.cutouts, recipe.crop
    size = model.clip.visual.image_size
    side = size if isinstance(size, int) else size[0]
    _, _, height, width = pixels.shape
    short = min(height, width)
    thetas, noises = [], []
    for generator in generators:
        fraction = low + (high - low) * torch.rand(count, generator=generator)
        scale_x, scale_y = fraction * short / width, fraction * short / height
        centre_x = (torch.rand(count, generator=generator) * 2 - 1) * (1 - scale_x)
        centre_y = (torch.rand(count, generator=generator) * 2 - 1) * (1 - scale_y)
        zero = torch.zeros(count)
        thetas.append(
            torch.stack(
                [
                    torch.stack([scale_x, zero, centre_x], 1),
                    torch.stack([zero, scale_y, centre_y], 1),
                ],
                1,
            )
        )
        noises.append(torch.randn(count, 3, side, side, generator=generator) * recipe.noise * 2)
    theta = torch.cat(thetas).to(pixels.device)
    grid = F.affine_grid(theta, (len(theta), 3, side, side), align_corners=False)
    copies = pixels.repeat_interleave(count, dim=0)
    cut = F.grid_sample(copies, grid, mode="bilinear", align_corners=False)
    cut = cut + torch.cat(noises).to(pixels.device)  # noise in [-1, 1] units: twice [0, 1]'s
    return cut.view(len(pixels), count, 3, side, side)


def _spherical_distance(a, b):
    """VQGAN+CLIP's loss: the squared great-circle distance between unit vectors, over the
    last dimension."""
    return (a - b).norm(dim=-1).div(2).arcsin().pow(2).mul(2)


def _normalised(embeddings):
    embeddings = embeddings.float()
    return embeddings / embeddings.norm(dim=-1, keepdim=True)


def _to_pil(pixels):
    from PIL import Image

    from generation.decoding import looks_valid

    if not looks_valid(pixels):
        raise BadOutput()
    images = ((pixels.detach() + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1)
    return [Image.fromarray(image) for image in images.cpu().numpy()]
