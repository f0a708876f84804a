"""The engine on its own: plain inputs in (text, params, PIL images), images or its own errors
out, and no database anywhere (pytest-django refuses any query from these tests)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from generation.errors import Refused
from generation.modes import slots_for
from generation.params import clean_prompt_text, resolve_params
from generation.pipelines import generate_batch
from generation.presets import get_preset

REPO = Path(__file__).resolve().parents[2]
SMALL = {"model": "offline", "width": 64, "height": 64, "steps": 4}


def test_the_engine_imports_nothing_of_the_web_apps():
    """Every engine module imported in a fresh process, with the settings but no app loaded:
    not one module of partyhub, core, streams or accounts comes with them."""
    modules = sorted(p.stem for p in (REPO / "generation").glob("*.py") if p.stem != "apps")
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module('generation.' + name)\n"
        "apps = ('partyhub', 'core', 'streams', 'accounts')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in apps))\n"
    )
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_refusals_are_the_engines_own_with_a_stable_code():
    with pytest.raises(Refused) as unknown:
        resolve_params({"colour": "red"})
    assert unknown.value.code == "unknown_param"
    with pytest.raises(Refused) as missing:
        resolve_params({**SMALL, "mode": "img2img", "init_image": 7}, find_source=lambda *a: None)
    assert (missing.value.code, missing.value.message) == (
        "unknown_image",
        "No image 7 in this party.",
    )
    with pytest.raises(Refused) as empty:
        clean_prompt_text("   ")
    assert empty.value.code == "invalid_prompt"


def test_img2img_starts_from_the_pil_image_it_is_given(models_dir):
    """A light img2img of a red square stays red, of a blue one stays blue: the source is the
    image handed in, with no storage or database behind it."""
    found = {"width": 64, "height": 64, "seed": None}
    params = resolve_params(
        {**SMALL, "mode": "img2img", "init_upload": 1, "strength": 0.25, "seed": 5},
        find_source=lambda kind, pk: found,
    )
    preset = get_preset("offline")

    def render(colour):
        source = PILImage.new("RGB", (64, 64), colour)
        slots = slots_for("a chair", params, source=source)
        (image,), _ = generate_batch(preset, slots, lambda *a: None, lambda: False)
        return np.asarray(image, dtype=float).mean(axis=(0, 1))

    red, blue = render((220, 30, 30)), render((30, 30, 220))
    assert red[0] > red[2] and blue[2] > blue[0]
