"""Checking a prompt's text and generation parameters. Like diffusers' `check_inputs`: a value out
of range or of the wrong kind is refused with an error naming it, never clamped or fixed."""

import secrets

from generation.presets import all_presets, default_preset, get_preset
from generation.samplers import SAMPLERS
from partyhub.errors import ApiError

MAX_PROMPT_CHARS = 1000
MAX_SEED = 2**32 - 1
SOURCE_IMAGE_PARAMS = ("strength", "init_image", "init_upload", "mask")
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
    *SOURCE_IMAGE_PARAMS,
}


def clean_prompt_text(text, field="text"):
    if not isinstance(text, str):
        raise ApiError("invalid_prompt", f"{field} must be a string.")
    text = text.strip()
    if not 1 <= len(text) <= MAX_PROMPT_CHARS:
        raise ApiError(
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
        raise ApiError("invalid_param", f"{name} must be between {low} and {high}, not {value}.")


def resolve_params(params, party_defaults=None):
    """The full parameter set for a render: the request over the party's and the preset's defaults.

    Raises ApiError (`invalid_param`, `unknown_param`, `unknown_model`, `model_unavailable`,
    `unsupported_mode`) before anything is stored.
    """
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ApiError("invalid_param", "params must be an object.")
    unknown = sorted(set(params) - KNOWN_PARAMS)
    if unknown:
        raise ApiError("unknown_param", f"Unknown parameter(s): {', '.join(unknown)}.")

    merged = {**(party_defaults or {}), **params}
    preset = _preset(merged["model"]) if "model" in merged else default_preset()
    resolved = {
        "mode": "txt2img",
        "model": preset.name,
        **preset.defaults,
        "seed": None,
        "negative": "",
        "count": 1,
    }
    resolved.update(merged)

    if resolved["mode"] not in preset.modes:
        raise ApiError(
            "unsupported_mode",
            f"{preset.name} renders {', '.join(preset.modes)}; mode {resolved['mode']!r} is not "
            "available for it.",
        )
    given_source = [name for name in SOURCE_IMAGE_PARAMS if name in resolved]
    if given_source:
        raise ApiError("invalid_param", f"{given_source[0]} does not apply to txt2img.")
    if not isinstance(resolved["sampler"], str) or resolved["sampler"] not in SAMPLERS:
        raise ApiError(
            "invalid_param",
            f"sampler must be one of {list(SAMPLERS)}, not {resolved['sampler']!r}.",
        )
    for name in ("width", "height"):
        value = resolved[name]
        if not _is_int(value) or value % 8:
            raise ApiError("invalid_param", f"{name} must be a whole multiple of 8, not {value!r}.")
        _check_range(name, value, preset.limits[name])
    for name in ("steps", "count"):
        if not _is_int(resolved[name]):
            raise ApiError("invalid_param", f"{name} must be a whole number.")
        _check_range(name, resolved[name], preset.limits[name])
    if not _is_number(resolved["guidance"]):
        raise ApiError("invalid_param", "guidance must be a number.")
    _check_range("guidance", resolved["guidance"], preset.limits["guidance"])
    if resolved["seed"] is None:
        resolved["seed"] = secrets.randbelow(MAX_SEED + 1)
    if not _is_int(resolved["seed"]):
        raise ApiError("invalid_param", "seed must be a whole number.")
    _check_range("seed", resolved["seed"], (0, MAX_SEED))
    if not isinstance(resolved["negative"], str) or len(resolved["negative"]) > MAX_PROMPT_CHARS:
        raise ApiError(
            "invalid_param", f"negative must be a string of at most {MAX_PROMPT_CHARS} characters."
        )
    if resolved["count"] > 1 and resolved["seed"] + resolved["count"] - 1 > MAX_SEED:
        raise ApiError("invalid_param", "seed + count - 1 must not pass 2^32 - 1.")
    return resolved


def _preset(name):
    if not isinstance(name, str) or get_preset(name) is None:
        raise ApiError(
            "unknown_model", f"model must be one of {sorted(all_presets())}, not {name!r}."
        )
    preset = get_preset(name)
    if not preset.is_available():
        raise ApiError(
            "model_unavailable",
            f"{name} has no weights on this server; see the README on adding models.",
            409,
        )
    return preset
