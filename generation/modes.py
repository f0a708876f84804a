"""What each render mode adds to a diffusers call: the pipeline class it needs and its arguments.

txt2img is the loaded pipeline itself. img2img and inpaint reuse its components through
`from_pipe` (no second copy of the weights). A variation is txt2img from prepared noise: the
varied image's own starting noise, spherically blended with the noise of a new seed, as
AUTOMATIC1111's "variation seed" does.
"""

from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image as PILImage

from generation.params import images_per_render
from generation.weights import parse as parse_weights

_derived = {}  # (id of the base pipeline, mode) -> a pipeline sharing its components


@dataclass(frozen=True)
class Slot:
    """One image of a forward pass: its render's prompt and params, its own seed, in a walk how
    far along the way it is (0 at the start, 1 at the end), and for img2img and inpaint the
    source image and the mask (PIL images, shared by the render's slots)."""

    prompt: str
    params: dict
    seed: int
    walk_t: float = 0.0
    source: PILImage.Image | None = None
    mask: PILImage.Image | None = None


def forget(pipe):
    """Drop what was derived from an unloaded pipeline, so its weights can be freed."""
    for key in [key for key in _derived if key[0] == id(pipe)]:
        del _derived[key]
    encoder = id(getattr(pipe, "text_encoder", None))
    for key in [key for key in _embeddings if key[0] == encoder]:
        del _embeddings[key]
    _weighers.pop(encoder, None)


def slots_for(prompt, params, source=None, mask=None):
    """The images one render asks for: `count` seeds (a best-of render's `best_of`), or a walk's
    `frames` positions. img2img and inpaint take their `source` image, inpaint its `mask` too
    (PIL images)."""
    if params["mode"] == "walk":
        last = params["frames"] - 1
        return [Slot(prompt, params, params["seed"], i / last) for i in range(params["frames"])]
    seeds = range(params["seed"], params["seed"] + images_per_render(params))
    return [Slot(prompt, params, seed, source=source, mask=mask) for seed in seeds]


def pipeline_for(pipe, mode):
    if mode in ("txt2img", "variation", "walk"):
        return pipe
    key = (id(pipe), mode)
    if key not in _derived:
        import diffusers

        auto = {
            "img2img": diffusers.AutoPipelineForImage2Image,
            "inpaint": diffusers.AutoPipelineForInpainting,
        }[mode]
        derived = auto.from_pipe(pipe)
        derived.set_progress_bar_config(disable=True)
        _derived[key] = derived
    return _derived[key]


def call_arguments(pipe, slots, device):
    """The keyword arguments of the pipeline call that depend on the mode, one entry per image
    where the pipeline takes a list. All slots share a batch key, so their mode, size and
    strength agree."""
    first = slots[0].params
    mode = first["mode"]
    size = {"width": first["width"], "height": first["height"]}
    if mode == "txt2img":
        return size
    if mode == "variation":
        import torch

        noise = [variation_noise(pipe, slot.params, slot.seed, device) for slot in slots]
        return {**size, "latents": torch.cat(noise)}
    if mode == "walk":
        return {**size, **walk_arguments(pipe, slots, device)}
    images = _once_per_render(slots, lambda slot: fit_source(slot.source, slot.params))
    if mode == "img2img":
        return {"image": images, "strength": first["strength"]}
    cell = pipe.vae_scale_factor
    masks = _once_per_render(slots, lambda slot: cell_mask(painted(slot.mask, slot.params), cell))
    return {**size, "image": images, "mask_image": masks, "strength": first["strength"]}


def painted(mask, params):
    """The painted part of an inpainting mask at the render's size: 255 where the mask is at
    least half white (as diffusers binarises it), else 0."""
    mask = mask.convert("L")
    size = (params["width"], params["height"])
    if mask.size != size:
        mask = mask.resize(size, PILImage.Resampling.NEAREST)
    return mask.point(lambda value: 255 if value >= 128 else 0)


def cell_mask(mask, cell):
    """The mask grown to whole latent cells (`cell` pixels a side): a cell with any painted
    pixel is repainted. diffusers shrinks the mask to the latents by taking one pixel per cell
    (its top-left corner), so a stroke narrower than a cell, or a stroke's right and bottom
    edges, would otherwise be left out of the repaint and come back as they were."""
    width, height = mask.size
    cells = mask.resize((width // cell, height // cell), PILImage.Resampling.BOX)
    cells = cells.point(lambda value: 255 if value else 0)
    return cells.resize((width, height), PILImage.Resampling.NEAREST)


def keep_unmasked(slots, images):
    """Each inpainted image with its source's own pixels outside the painted part. The model
    repaints whole latent cells, and its autoencoder cannot give a picture back exactly (2 to
    20 of 255 off, more on fine texture), so only the painted part, feathered a little inwards
    at its edge, is taken from the render, as AUTOMATIC1111 overlays the original."""
    from PIL import ImageChops, ImageFilter

    def overlay(slot):
        inside = painted(slot.mask, slot.params)
        # Soft within the painted part only: outside it every pixel stays the source's.
        alpha = ImageChops.multiply(inside, inside.filter(ImageFilter.GaussianBlur(FEATHER)))
        return fit_source(slot.source, slot.params), alpha

    overlays = _once_per_render(slots, overlay)
    return [
        PILImage.composite(image.convert("RGB"), source, alpha)
        for image, (source, alpha) in zip(images, overlays, strict=True)
    ]


FEATHER = 2  # pixels: the seam between the repaint and the kept source


def _once_per_render(slots, prepare):
    # The images of one render share their source: convert and resize it once.
    prepared = {}
    for slot in slots:
        if id(slot.params) not in prepared:
            prepared[id(slot.params)] = prepare(slot)
    return [prepared[id(slot.params)] for slot in slots]


def fit_source(image, params):
    """The source image in RGB at the size the render asked for (the request may resize it)."""
    image = image.convert("RGB")
    size = (params["width"], params["height"])
    return image if image.size == size else image.resize(size, PILImage.Resampling.LANCZOS)


def variation_noise(pipe, params, seed, device):
    """Starting latents: the varied image's noise blended toward `seed`'s by `strength`."""
    noise = _noise(pipe, params, device, params["init_seed"])
    return slerp(params["strength"], noise, _noise(pipe, params, device, seed))


def walk_arguments(pipe, slots, device):
    """Each frame's prompt embedding and starting noise, `walk_t` of the way from the start's
    (prompt, seed) to the end's (walk_to, walk_seed): linear for embeddings, spherical for noise."""
    import torch

    walk_tos = [slot.params["walk_to"] or slot.prompt for slot in slots]
    (starts, ends), negatives = _encoded(pipe, slots, device, walk_tos)
    embeds, latents = [], []
    for slot, start, end in zip(slots, starts.split(1), ends.split(1), strict=True):
        params = slot.params
        embeds.append(torch.lerp(start, end, slot.walk_t))
        begin = _noise(pipe, params, device, params["seed"])
        latents.append(slerp(slot.walk_t, begin, _noise(pipe, params, device, params["walk_seed"])))
    return {
        "negative_prompt_embeds": negatives,
        "prompt_embeds": torch.cat(embeds),
        "latents": torch.cat(latents),
    }


def prompt_arguments(pipe, slots, device):
    """The prompts as cached embeddings where the pipeline takes them (Stable Diffusion 1 and 2;
    SDXL's pooled embeddings are left to the pipeline), else as text."""
    import inspect

    accepted = inspect.signature(pipe.__call__).parameters
    if "prompt_embeds" not in accepted or "pooled_prompt_embeds" in accepted:
        if any(slot.params.get("weights") for slot in slots):
            # Refused when submitted (generation/params.py); here the brackets would be drawn
            # as words.
            raise ValueError(f"{type(pipe).__name__} takes its prompts as text: no weights.")
        negatives = [slot.params["negative"] for slot in slots]
        # None unless someone wants one: then "" for the others, which is what None means.
        return {
            "prompt": [slot.prompt for slot in slots],
            "negative_prompt": negatives if any(negatives) else None,
        }
    (embeds,), negatives = _encoded(pipe, slots, device)
    return {"prompt_embeds": embeds, "negative_prompt_embeds": negatives}


def _encoded(pipe, slots, device, *more):
    """The slots' prompts' embeddings, those of each further list of texts (one per slot), and
    the negatives' embeddings, or None without classifier-free guidance (as diffusers decides:
    guidance above 1): all the batch's new texts encoded in one call."""
    groups = [[slot.prompt for slot in slots], *more]
    if slots[0].params["guidance"] > 1:
        groups.append([slot.params["negative"] for slot in slots])
    # Each slot's texts as its own render reads them: one render's weights never reach another's.
    inputs = [
        encoder_input(text, slot.params)
        for group in groups
        for text, slot in zip(group, slots, strict=True)
    ]
    rows = embeddings(pipe, inputs, device)
    parts = list(rows.split(len(slots)))
    negatives = parts.pop() if slots[0].params["guidance"] > 1 else None
    return parts, negatives


def encoder_input(text, params):
    """What the text encoder is given for one of a render's texts: the text itself, or with
    `weights` its pieces and their weights (generation/weights.py); where every weight is 1,
    the text without its syntax, so that `(word:1.0)` is exactly `word`."""
    if not params.get("weights") or not text:
        return text  # the empty negative stays diffusers' unconditional embedding
    parsed = parse_weights(text)
    return parsed if parsed.weighted else parsed.text


# (text encoder, text or weights.Weighted) -> its embedding: a party refines the same prompts
# again and again, and `count` images of one render share theirs. Read and written by one render
# at a time.
_embeddings = OrderedDict()
MAX_CACHED_EMBEDDINGS = 512


def embeddings(pipe, texts, device):
    """The texts' prompt embeddings, one row each in order: those seen before from the cache,
    the others (each text once) encoded: plain texts together in one call, weighted ones
    (`encoder_input`) by compel. The empty text is the unconditional embedding of
    classifier-free guidance, as diffusers makes it."""
    import torch

    encoder = id(pipe.text_encoder)
    found = {}
    for text in texts:
        if (encoder, text) in _embeddings:
            _embeddings.move_to_end((encoder, text))
            found[text] = _embeddings[(encoder, text)]
    missing = [text for text in dict.fromkeys(texts) if text not in found]
    if missing:
        for text, row in zip(missing, _encode(pipe, missing, device), strict=True):
            found[text] = _embeddings[(encoder, text)] = row
        while len(_embeddings) > MAX_CACHED_EMBEDDINGS:
            _embeddings.popitem(last=False)
    return torch.cat([found[text] for text in texts])


def _encode(pipe, texts, device):
    """One embedding row per text, in order. Without autograd: a cached row would otherwise
    hold the text encoder's activations alive with it."""
    import torch

    plain = [text for text in texts if isinstance(text, str)]
    rows = {}
    with torch.no_grad():
        if plain:
            encoded, _ = pipe.encode_prompt(plain, device, 1, False)
            rows.update(zip(plain, encoded.split(1), strict=True))
        for text in texts:
            if not isinstance(text, str):
                rows[text] = _weighted_embedding(pipe, text, device)
    return [rows[text] for text in texts]


# id of a text encoder -> compel's EmbeddingsProvider for it (it keeps the empty prompt's
# embedding, which weights above 1 scale away from).
_weighers = {}


def _weighted_embedding(pipe, weighted, device):
    """compel's embedding of a weighted prompt: the encoder reads the pieces' tokens as one
    sequence, like the plain text; a weight above 1 scales its tokens' rows away from the empty
    prompt's, one below 1 blends the whole embedding toward the prompt with those tokens masked
    out. The same shape as the pipeline's own rows (the window; never cut: a longer prompt is
    refused when submitted)."""
    encoder = id(pipe.text_encoder)
    if encoder not in _weighers:
        from compel import EmbeddingsProvider

        _weighers[encoder] = EmbeddingsProvider(
            tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, truncate=True
        )
    texts = [text for text, _ in weighted.fragments]
    weights = [weight for _, weight in weighted.fragments]
    return _weighers[encoder].get_embeddings_for_weighted_prompt_fragments(
        [texts], [weights], device=device
    )


def _noise(pipe, params, device, seed):
    """The starting noise the pipeline draws for one image of this seed (so a variation with a
    tiny strength, or a walk's first frame, is the plain render of that seed)."""
    import torch

    return draw_starting_noise(pipe, params, torch.Generator(device).manual_seed(seed))


def draw_starting_noise(pipe, params, generator):
    """The starting noise the pipeline would draw for one image from `generator`, drawn from it."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    shape = (
        1,
        pipe.unet.config.in_channels,
        params["height"] // pipe.vae_scale_factor,
        params["width"] // pipe.vae_scale_factor,
    )
    return randn_tensor(shape, generator=generator, device=torch.device(generator.device))


def slerp(t, low, high):
    """Spherical interpolation from `low` (t=0) to `high` (t=1), keeping Gaussian noise's norm."""
    import torch

    low_unit = low / low.norm()
    high_unit = high / high.norm()
    dot = (low_unit * high_unit).sum().clamp(-1.0, 1.0)
    omega = torch.acos(dot)
    if omega.abs() < 1e-6:  # parallel: linear is exact and avoids dividing by sin(0)
        return (1 - t) * low + t * high
    return (torch.sin((1 - t) * omega) * low + torch.sin(t * omega) * high) / torch.sin(omega)
