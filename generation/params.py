"""Checking a prompt's text and generation parameters. Like diffusers' `check_inputs`: a value out
of range or of the wrong kind is refused with an error naming it, never clamped or fixed."""

import secrets

from django.conf import settings

from generation import scoring
from generation.errors import Refused
from generation.presets import all_presets, default_preset, get_preset
from generation.tokens import refuse_too_long
from generation.weights import parse as parse_weights

MAX_PROMPT_CHARS = 1000
MAX_SEED = 2**32 - 1
WALK_PARAMS = ("walk_to", "walk_seed", "frames")
MAX_WALK_FRAMES = 32
SOURCE_IMAGE_PARAMS = ("strength", "init_image", "init_upload", "mask")
# The params each mode takes beyond txt2img's; any other of these is refused for it.
MODE_PARAMS = {
    "txt2img": (),
    "img2img": ("strength", "init_image", "init_upload"),
    "inpaint": ("strength", "init_image", "init_upload", "mask"),
    # A1111's "variation seed": the init image's noise blended with `seed`'s by `strength`.
    "variation": ("strength", "init_image"),
    # Frames from (prompt, seed) to (walk_to, walk_seed): embeddings and noise interpolated.
    "walk": WALK_PARAMS,
}
MODE_ONLY_PARAMS = SOURCE_IMAGE_PARAMS + WALK_PARAMS
DEFAULT_STRENGTH = {"img2img": 0.6, "inpaint": 1.0, "variation": 0.3}
KNOWN_PARAMS = {
    "mode",
    "model",
    "sampler",
    "width",
    "height",
    "steps",
    "guidance",
    "seed",
    "negative",
    "count",
    "best_of",
    "weights",
    *MODE_ONLY_PARAMS,
}


def clean_prompt_text(text, field="text"):
    if not isinstance(text, str):
        raise Refused("invalid_prompt", f"{field} must be a string.")
    text = text.strip()
    if not 1 <= len(text) <= MAX_PROMPT_CHARS:
        raise Refused(
            "invalid_prompt",
            f"{field} must be 1 to {MAX_PROMPT_CHARS} characters after trimming, not {len(text)}.",
        )
    return text


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_range(name, value, bounds):
    low, high = bounds
    if not low <= value <= high:
        raise Refused("invalid_param", f"{name} must be between {low} and {high}, not {value}.")


def resolve_params(params, party_defaults=None, find_source=None):
    """The full parameter set for a render: the request over the party's and the preset's defaults.

    `find_source(kind, id)` looks up a source image of the party (`kind` is "image" or
    "upload") and returns its `{"width", "height", "seed"}` (seed None for uploads), or None.
    Raises Refused (`invalid_param`, `unknown_param`, `unknown_model`, `model_unavailable`,
    `unsupported_mode`, `unknown_image`, `unknown_upload`, `mask_size_mismatch`) before
    anything is stored.
    """
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise Refused("invalid_param", "params must be an object.")
    unknown = sorted(set(params) - KNOWN_PARAMS)
    if unknown:
        raise Refused("unknown_param", f"Unknown parameter(s): {', '.join(unknown)}.")

    merged = {**(party_defaults or {}), **params}
    preset = _preset(merged["model"]) if "model" in merged else default_preset()
    resolved = {
        "mode": "txt2img",
        "model": preset.name,
        **preset.defaults,
        "seed": None,
        "negative": "",
        "count": 1,
        # Off unless asked for: a prompt written before weights existed keeps its meaning, its
        # brackets read as the characters they are.
        "weights": False,
    }
    mode = merged.get("mode", "txt2img")
    if not isinstance(mode, str) or mode not in preset.modes:
        raise Refused(
            "unsupported_mode",
            f"{preset.name} renders {', '.join(preset.modes)}; mode {mode!r} is not "
            "available for it.",
        )
    not_for_mode = [n for n in MODE_ONLY_PARAMS if n in merged and n not in MODE_PARAMS[mode]]
    if not_for_mode:
        raise Refused("invalid_param", f"{not_for_mode[0]} does not apply to {mode}.")
    if mode == "walk":
        resolved.update({"walk_to": None, "walk_seed": None, "frames": 8})
    elif mode != "txt2img":
        resolved.update(_source_defaults(mode, merged, find_source))
    resolved.update(merged)
    # Each preset names the samplers it has: an autoregressive model samples tokens instead.
    if not isinstance(resolved["sampler"], str) or resolved["sampler"] not in preset.samplers:
        raise Refused(
            "invalid_param",
            f"sampler must be one of {list(preset.samplers)}, not {resolved['sampler']!r}.",
        )
    for name in ("width", "height"):
        value = resolved[name]
        try:
            if not _is_int(value) or value % 8:
                raise Refused(
                    "invalid_param", f"{name} must be a whole multiple of 8, not {value!r}."
                )
            _check_range(name, value, preset.limits[name])
        except Refused as refused:
            if mode in ("txt2img", "walk") or name in merged:
                raise
            raise _source_size_refused(refused, resolved, preset) from None
    for name in ("steps", "count"):
        if not _is_int(resolved[name]):
            raise Refused("invalid_param", f"{name} must be a whole number.")
        _check_range(name, resolved[name], preset.limits[name])
    if not _is_number(resolved["guidance"]):
        raise Refused("invalid_param", "guidance must be a number.")
    _check_range("guidance", resolved["guidance"], preset.limits["guidance"])
    if resolved["seed"] is None:
        resolved["seed"] = secrets.randbelow(MAX_SEED + 1)
    if not _is_int(resolved["seed"]):
        raise Refused("invalid_param", "seed must be a whole number.")
    _check_range("seed", resolved["seed"], (0, MAX_SEED))
    if not isinstance(resolved["negative"], str) or len(resolved["negative"]) > MAX_PROMPT_CHARS:
        raise Refused(
            "invalid_param", f"negative must be a string of at most {MAX_PROMPT_CHARS} characters."
        )
    if resolved["negative"] and preset.family == "autoregressive":
        # Janus guides against its prompt blanked out; there is nowhere to put a negative one.
        raise Refused("invalid_param", f"{preset.name} takes no negative prompt.")
    if resolved["count"] > 1 and resolved["seed"] + resolved["count"] - 1 > MAX_SEED:
        raise Refused("invalid_param", "seed + count - 1 must not pass 2^32 - 1.")
    _check_best_of(mode, resolved)
    check_weights_param(preset, resolved["weights"])
    if mode == "walk":
        _check_walk_params(resolved)
    elif mode != "txt2img":
        _check_source_params(mode, resolved, preset)
    return resolved


def check_token_limits(text, resolved):
    """Refuse text the model's text encoder would cut (`prompt_too_long`, naming the field, its
    token count and the limit): the prompt, the negative prompt and a walk's `walk_to`, each
    encoded on its own as the pipeline encodes it; with `weights`, first `check_weights`, and
    the texts counted without their weight syntax, as compel encodes them. Run after
    `resolve_params`, on what it resolved; returns `resolved`."""
    preset = get_preset(resolved["model"])
    weighted = check_weights(text, resolved)
    for field, value in _texts(text, resolved):
        refuse_too_long(preset, field, value, weighted)
    return resolved


def check_weights(text, resolved):
    """With `weights`, refuse a model that cannot take them (`invalid_param`) and weight syntax
    that cannot be read in the prompt, the negative prompt or `walk_to` (`invalid_prompt`,
    naming the field and the slip); returns whether the render is weighted. Also run on a
    stored render before it renders, for rows written before these checks or by other code."""
    if not resolved.get("weights"):
        return False
    check_weights_param(get_preset(resolved["model"]), resolved["weights"])
    for field, value in _texts(text, resolved):
        if value:
            parse_weights(value, field)
    return True


def _texts(text, resolved):
    """The render's texts the text encoder reads, by the name of their field."""
    return (
        ("text", text),
        ("negative", resolved["negative"]),
        ("walk_to", resolved.get("walk_to")),
    )


def check_weights_param(preset, weighted):
    """Refuse a `weights` that is not a boolean, or true for a model that cannot weigh prompts
    (`invalid_param`, naming the models that can)."""
    if not isinstance(weighted, bool):
        raise Refused("invalid_param", f"weights must be true or false, not {weighted!r}.")
    if weighted and not preset.prompt_weights:
        able = [name for name, other in all_presets().items() if other.prompt_weights]
        why = (
            "it reads the prompt with a language model and draws token by token: there is no "
            "text encoder output to weigh"
            if preset.family == "autoregressive"
            else "PartyHub gives its pipeline the prompts as text, not as embeddings that "
            "weights could scale"
        )
        raise Refused(
            "invalid_param",
            f"{preset.name} takes no prompt weights ({why}); {', '.join(able)} do.",
        )


def images_per_render(params):
    """How many images a render makes: a best-of render's `best_of` candidates, else `count`
    (a walk, whose count is 1, makes its `frames`: slots_for counts those)."""
    return params.get("best_of") or params["count"]


def most_best_of():
    """The most candidates a best-of render may have: they render in one forward pass, so at
    most the images of one batch."""
    return settings.PARTYHUB_MAX_BATCH


def _check_best_of(mode, resolved):
    """`best_of` N renders N candidates (seeds `seed` to `seed + N - 1`) and keeps the `count`
    the CLIP model scores best against the prompt. Absent or null: no candidates, as before."""
    if resolved.get("best_of") is None:
        # null overrides a party default of best_of; either way the resolved set has none
        resolved.pop("best_of", None)
        return
    best_of, count = resolved["best_of"], resolved["count"]
    if mode == "walk":
        raise Refused("invalid_param", "best_of does not apply to walk: its frames are its images.")
    if not _is_int(best_of):
        raise Refused("invalid_param", f"best_of must be a whole number, not {best_of!r}.")
    most = most_best_of()
    if not count < best_of <= most:
        raise Refused(
            "invalid_param",
            f"best_of must be more than count ({count}) and at most {most} (PARTYHUB_MAX_BATCH), "
            f"not {best_of}.",
        )
    if resolved["seed"] + best_of - 1 > MAX_SEED:
        raise Refused("invalid_param", "seed + best_of - 1 must not pass 2^32 - 1.")
    if not scoring.is_configured():
        raise Refused(
            "scoring_unavailable",
            "best_of keeps the candidates a CLIP model scores best, and this server has no CLIP "
            "model configured (PARTYHUB_CLIP_PRETRAINED).",
        )


def _check_walk_params(resolved):
    if resolved["count"] != 1:
        raise Refused("invalid_param", "A walk renders `frames` images; count must be 1.")
    frames = resolved["frames"]
    if not _is_int(frames) or not 2 <= frames <= MAX_WALK_FRAMES:
        raise Refused("invalid_param", f"frames must be 2 to {MAX_WALK_FRAMES}, not {frames!r}.")
    if resolved["walk_to"] is not None:
        resolved["walk_to"] = clean_prompt_text(resolved["walk_to"], "walk_to")
    if resolved["walk_seed"] is not None:
        if not _is_int(resolved["walk_seed"]):
            raise Refused("invalid_param", "walk_seed must be a whole number.")
        _check_range("walk_seed", resolved["walk_seed"], (0, MAX_SEED))
    if resolved["walk_to"] is None and resolved["walk_seed"] in (None, resolved["seed"]):
        raise Refused("invalid_param", "A walk needs somewhere to go: walk_to, walk_seed or both.")
    if resolved["walk_seed"] is None:
        resolved["walk_seed"] = resolved["seed"]  # a walk between two prompts on one noise


def _source_defaults(mode, merged, find_source):
    """Look up the source image (and mask) and default the output size to the source's.

    Returns the params derived from the source: its size (unless the request sets one), the
    mode's default strength and, for a variation, the seed of the image being varied.
    """
    sources = {"init_image": "image", "init_upload": "upload"}
    given = [name for name in sources if name in merged]
    if len(given) != 1:
        names = " or ".join(name for name in sources if name in MODE_PARAMS[mode])
        raise Refused("invalid_param", f"{mode} needs exactly one source image: {names}.")
    name, kind = given[0], sources[given[0]]
    source = _find(find_source, kind, merged[name])
    derived = {
        "width": source["width"],
        "height": source["height"],
        "strength": DEFAULT_STRENGTH[mode],
    }
    if mode == "variation":
        # The varied image's own noise is the base; `seed` picks the noise blended into it.
        derived["init_seed"] = source["seed"]
        for axis in ("width", "height"):
            if axis in merged and merged[axis] != source[axis]:
                raise Refused(
                    "invalid_param",
                    f"A variation keeps its image's size ({source['width']}x{source['height']}); "
                    f"{axis} cannot change.",
                )
    if mode == "inpaint":
        if "mask" not in merged:
            raise Refused("invalid_param", "inpaint needs a mask (an upload id).")
        mask = _find(find_source, "upload", merged["mask"])
        if (mask["width"], mask["height"]) != (source["width"], source["height"]):
            raise Refused(
                "mask_size_mismatch",
                f"The mask is {mask['width']}x{mask['height']} but its image is "
                f"{source['width']}x{source['height']}.",
            )
    return derived


def _source_size_refused(refused, resolved, preset):
    """A size taken from the source image that the model cannot take: say so, and how to fix it."""
    width, height = preset.limits["width"], preset.limits["height"]
    why = refused.message.rstrip(".")
    return Refused(
        refused.code,
        f"The source image is {resolved['width']}×{resolved['height']}, and {preset.name} takes "
        f"whole multiples of 8 from {width[0]} to {width[1]} wide and {height[0]} to "
        f"{height[1]} high ({why}). Upload it again with fit (crop or pad) to fit it to the "
        "model, or give width and height to resize it.",
    )


def _find(find_source, kind, pk):
    if not _is_int(pk) or pk < 1:
        raise Refused("invalid_param", f"The {kind} must be given by its id (a positive integer).")
    found = find_source(kind, pk) if find_source else None
    if found is None:
        raise Refused(f"unknown_{kind}", f"No {kind} {pk} in this party.")
    return found


def _check_source_params(mode, resolved, preset):
    strength = resolved["strength"]
    if not _is_number(strength) or not 0 < strength <= 1:
        raise Refused("invalid_param", f"strength must be in (0, 1], not {strength!r}.")
    # A clip-guided img2img runs every step, its strength how far it may stray from the image.
    diffusion = preset.family == "diffusion"
    if diffusion and mode in ("img2img", "inpaint") and int(resolved["steps"] * strength) < 1:
        # diffusers runs int(steps * strength) denoising steps from the source image.
        raise Refused(
            "invalid_param",
            f"steps x strength must be at least 1 ({resolved['steps']} x {strength} is not).",
        )


def _preset(name):
    if not isinstance(name, str) or get_preset(name) is None:
        raise Refused(
            "unknown_model", f"model must be one of {sorted(all_presets())}, not {name!r}."
        )
    preset = get_preset(name)
    if not preset.is_available():
        raise Refused(
            "model_unavailable",
            f"{name} has no weights on this server; see the README on adding models.",
        )
    return preset


# What renders must share to run in one forward pass: everything the pipeline takes once per
# call rather than once per image. Prompts, negatives, seeds and sources differ freely.
BATCH_KEY_PARAMS = ("model", "mode", "width", "height", "steps", "sampler", "guidance", "strength")


def batch_key(params):
    if params.get("mode") == "walk":
        return ""  # a walk's frames are its batch

    def text(value):
        # guidance 5 and 5.0 are the same request
        return repr(float(value)) if _is_number(value) else str(value)

    return "|".join(text(params.get(name)) for name in BATCH_KEY_PARAMS)
