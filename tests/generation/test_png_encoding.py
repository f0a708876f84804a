"""The worker's PNG encoder (generation/pngmeta.py): Pillow reads back every pixel and both text
chunks, whatever the picture and the text; no database, no model."""

import io
import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from generation import pngmeta, probe_pictures
from generation.modes import Slot


def read_back(data):
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.mode, np.asarray(image), dict(image.text)


@settings(max_examples=30, deadline=None)
@given(
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    flat=st.booleans(),
)
def test_it_keeps_every_pixel(width, height, seed, flat):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if flat:  # long runs and extreme values, where the filter's sums overflow a byte
        pixels[:, : width // 2] = 255
    data = pngmeta.png_bytes(Image.fromarray(pixels), "a cat", {"party": "ABCD"})
    mode, read, text = read_back(data)
    assert mode == "RGB" and np.array_equal(read, pixels)
    assert text == {"parameters": "a cat", "partyhub": '{"party":"ABCD"}'}


def test_text_beyond_latin_1_is_kept():
    parameters = "две кошки 🐈, Negative prompt: 猫\nSteps: 1"
    data = pngmeta.png_bytes(Image.new("RGB", (8, 8), "red"), parameters, {"author": "Zoë 🎈"})
    _, _, text = read_back(data)
    assert text["parameters"] == parameters
    assert json.loads(text["partyhub"]) == {"author": "Zoë 🎈"}


def test_a_picture_with_real_content_is_no_larger_than_pillow_makes_it():
    params = {"width": 256, "height": 256}
    pixels = probe_pictures.decoded([Slot(prompt="", seed=0, params=params)])[0]
    array = ((pixels.numpy().transpose(1, 2, 0) / 2 + 0.5).clip(0, 1) * 255).round()
    picture = Image.fromarray(array.astype(np.uint8))
    ours = pngmeta.rgb_png(picture)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    assert np.array_equal(read_back(ours)[1], np.asarray(picture))
    assert len(ours) <= 1.05 * len(buffer.getvalue())


def test_other_modes_go_through_pillow():
    gray = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8))
    mode, read, text = read_back(pngmeta.png_bytes(gray, "a cat", {}))
    assert mode == "L" and np.array_equal(read, np.asarray(gray)) and text["parameters"] == "a cat"
