"""Fitting a picture to the sizes a model takes (generation/fitting.py): sizes and pixels, no
database, no model."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from generation import fitting
from generation.presets import all_presets

OFFLINE = {"width": (64, 256), "height": (64, 256)}
LIMITS = [preset.limits for preset in all_presets().values()]


@given(
    width=st.integers(1, 4096),
    height=st.integers(1, 4096),
    limits=st.sampled_from(LIMITS),
    how=st.sampled_from(fitting.FITS),
)
def test_every_fitted_size_is_one_the_model_takes(width, height, limits, how):
    plan = fitting.plan(width, height, limits, how)
    for side, (low, high) in zip(plan.size, (limits["width"], limits["height"]), strict=True):
        assert side % 8 == 0 and low <= side <= high
    scaled = plan.scaled or plan.original
    if how == "crop":  # a crop only takes pixels away
        assert all(s <= o for s, o in zip(plan.size, scaled, strict=True))
    else:  # a pad only adds them
        assert all(s >= o for s, o in zip(plan.size, scaled, strict=True))


@pytest.mark.parametrize(
    "size, how, expected",
    [
        ((300, 200), "pad", ((256, 171), (256, 176))),  # scaled down, then padded
        ((300, 200), "crop", ((256, 171), (256, 168))),
        ((250, 100), "pad", (None, (256, 104))),  # the next multiple of 8 up
        ((250, 100), "crop", (None, (248, 96))),  # and down
        ((128, 128), "pad", (None, (128, 128))),  # fits already
        ((40, 100), "pad", (None, (64, 104))),  # a side under the minimum is padded to it
        ((40, 100), "crop", ((64, 160), (64, 160))),  # or scaled up until it covers it
        ((4000, 900), "crop", ((284, 64), (256, 64))),  # scaled to cover, then cut
    ],
)
def test_sizes_go_to_the_nearest_allowed_size_the_chosen_way(size, how, expected):
    plan = fitting.plan(*size, OFFLINE, how)
    assert (plan.scaled, plan.size) == expected


def test_the_description_says_what_was_done():
    assert fitting.plan(300, 200, OFFLINE, "pad").describe() == (
        "Fitted 300×200 → 256×176 by scaling down to 256×171, then padding."
    )
    assert fitting.plan(250, 100, OFFLINE, "crop").describe() == (
        "Fitted 250×100 → 248×96 by cropping."
    )
    plan = fitting.plan(128, 64, OFFLINE, "crop")
    assert not plan.changed and plan.describe() == "128×64 fits the model as it is."
    with pytest.raises(ValueError):
        fitting.plan(10, 10, OFFLINE, "stretch")


def halves(width, height, mode="RGB"):
    """Left half white, right half black."""
    pixels = np.zeros((height, width), np.uint8)
    pixels[:, : width // 2] = 255
    return Image.fromarray(pixels).convert(mode)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_a_pad_repeats_the_edge_outwards_and_keeps_the_picture_in_the_middle(mode):
    image = halves(250, 100, mode)
    fitted = fitting.apply(image, fitting.plan(250, 100, OFFLINE, "pad"))
    assert (fitted.size, fitted.mode) == ((256, 104), mode)
    gray = np.asarray(fitted.convert("L"))
    # 3 columns added left (white edge), 3 right (black edge), 2 rows above and below.
    assert (gray[:, :3] == 255).all() and (gray[:, -3:] == 0).all()
    assert (gray[2:102, 3:253] == np.asarray(image.convert("L"))).all()


def test_a_crop_keeps_the_middle():
    image = halves(250, 100)
    fitted = fitting.apply(image, fitting.plan(250, 100, OFFLINE, "crop"))
    assert fitted.size == (248, 96)
    assert (np.asarray(fitted) == np.asarray(image)[2:98, 1:249]).all()


def test_scaling_keeps_the_picture_s_shape_and_content():
    image = halves(300, 200)
    for how in fitting.FITS:
        fitted = fitting.apply(image, fitting.plan(300, 200, OFFLINE, how))
        gray = np.asarray(fitted.convert("L")).astype(int)
        middle = gray.shape[0] // 2
        assert gray[middle, 10] > 200 and gray[middle, -10] < 50  # white left, black right


def test_a_thin_sliver_scaled_up_for_a_crop_never_builds_the_whole_scaled_picture():
    image = halves(4000, 30)
    plan = fitting.plan(4000, 30, OFFLINE, "crop")
    assert plan.scaled == (8533, 64)
    fitted = fitting.apply(image, plan)  # resampled straight into the cropped box
    assert fitted.size == (256, 64)
