"""From a decoded batch to PIL images (generation/decoding.py): the same bytes as diffusers'
own conversion, and the checks that refuse NaN and flat output; no database, no model."""

import numpy as np
import pytest
import torch
from diffusers.image_processor import VaeImageProcessor

from generation import decoding


def batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    # Past both ends of [-1, 1], as a VAE's output is, and the values that round at .5.
    pixels = torch.randn(3, 3, 17, 23, generator=generator) * 0.8
    pixels[0, :, 0, :5] = torch.tensor([-1.0, 1.0, 0.0, 1 / 255 - 1, -1.5])
    return pixels


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_it_gives_diffusers_bytes(dtype):
    processor = VaeImageProcessor()
    pixels = batch().to(dtype)
    ours = decoding.to_pil(pixels.clone(), processor)  # it overwrites the batch it is given
    theirs = processor.postprocess(pixels, output_type="pil")
    assert [image.mode for image in ours] == ["RGB"] * 3
    for mine, reference in zip(ours, theirs, strict=True):
        assert np.array_equal(np.asarray(mine), np.asarray(reference))


def test_other_processors_are_left_to_diffusers():
    processor = VaeImageProcessor(do_normalize=False)
    pixels = batch().clamp(0, 1)
    ours = decoding.to_pil(pixels.clone(), processor)
    theirs = processor.postprocess(pixels, output_type="pil")
    for mine, reference in zip(ours, theirs, strict=True):
        assert np.array_equal(np.asarray(mine), np.asarray(reference))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_one_bad_value_anywhere_refuses_the_batch(bad):
    pixels = batch()
    assert decoding.looks_valid(pixels)
    pixels[2, 1, 16, 22] = bad
    assert not decoding.looks_valid(pixels)


def test_one_flat_image_refuses_the_batch():
    pixels = batch()
    pixels[1] = 0.25
    assert not decoding.looks_valid(pixels)
