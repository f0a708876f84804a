"""Fitting a source image to the sizes a model takes: whole multiples of 8 within its limits.

A request is never fixed quietly (generation/params.py refuses a size the model cannot take);
fitting is what a member asks for when uploading a picture, with the choice of how, and the
answer says what was done: scaled down when a side passes the model's maximum, then cropped
to the allowed size below it or padded to the one above it.
"""

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

FITS = ("crop", "pad")
MULTIPLE = 8


@dataclass(frozen=True)
class Fitting:
    """What fitting does to an image of `original` size (width, height): scaled to `scaled`
    (None when not scaled), then cropped or padded, centred, to `size`."""

    how: str
    original: tuple[int, int]
    scaled: tuple[int, int] | None
    size: tuple[int, int]

    @property
    def changed(self):
        return self.size != self.original or self.scaled is not None

    def describe(self):
        """One sentence for people: what was done, or that nothing was needed."""
        before, after = _shown(self.original), _shown(self.size)
        if not self.changed:
            return f"{before} fits the model as it is."
        steps = []
        if self.scaled is not None:
            way = "down" if self.scaled[0] < self.original[0] else "up"
            steps.append(f"scaling {way} to {_shown(self.scaled)}")
        if self.size != (self.scaled or self.original):
            steps.append("cropping" if self.how == "crop" else "padding")
        return f"Fitted {before} → {after} by " + ", then ".join(steps) + "."


def _shown(size):
    return f"{size[0]}×{size[1]}"


def plan(width, height, limits, how):
    """The Fitting of a `width` x `height` image to `limits` ({"width": (min, max), "height":
    (min, max)}, as a preset has them) by `how`, "crop" or "pad".

    Larger than the maximum: scaled down (keeping its shape) until both sides fit. Then "crop"
    cuts each side down to the allowed size below it and "pad" extends it to the one above; a
    side under the minimum is padded up to it, or for "crop" the image is scaled up until it
    covers the minimum (and cut where that passes the maximum).
    """
    if how not in FITS:
        raise ValueError(f"how must be one of {FITS}, not {how!r}")
    bounds = [_allowed(limits["width"]), _allowed(limits["height"])]
    original = (width, height)
    scale = min(1.0, *(high / side for side, (_, high) in zip(original, bounds, strict=True)))
    if how == "crop":
        # Cropping cannot add pixels: a side under the minimum needs the image scaled up.
        scale = max(scale, *(low / side for side, (low, _) in zip(original, bounds, strict=True)))
    scaled = tuple(max(1, round(side * scale)) for side in original)
    if how == "crop":
        # round() may land a pixel under a bound the scale was chosen to reach.
        size = tuple(
            max(low, min(high, side // MULTIPLE * MULTIPLE))
            for side, (low, high) in zip(scaled, bounds, strict=True)
        )
        scaled = tuple(max(side, low) for side, (low, _) in zip(scaled, bounds, strict=True))
    else:
        size = tuple(
            max(low, min(high, math.ceil(side / MULTIPLE) * MULTIPLE))
            for side, (low, high) in zip(scaled, bounds, strict=True)
        )
    return Fitting(how, original, None if scaled == original else scaled, size)


def _allowed(bounds):
    """The smallest and largest multiples of 8 within (min, max)."""
    low, high = bounds
    low, high = math.ceil(low / MULTIPLE) * MULTIPLE, high // MULTIPLE * MULTIPLE
    if low > high:
        raise ValueError(f"no multiple of {MULTIPLE} lies within {bounds}")
    return low, high


def apply(image, fitting):
    """`image` (a PIL image of fitting.original size, in L, RGB or RGBA) fitted: scaled, then
    cropped or padded around its centre. Padding repeats the edge pixels outwards, so a redraw
    sees the picture continue rather than a frame of some colour."""
    if not fitting.changed:
        return image
    scaled_width, scaled_height = fitting.scaled or fitting.original
    width, height = fitting.size
    if fitting.how == "crop":
        left, top = (scaled_width - width) // 2, (scaled_height - height) // 2
        if fitting.scaled is None:
            return image.crop((left, top, left + width, top + height))
        # Scaled and cut in one resampling, without the whole scaled-up picture in memory.
        x, y = image.width / scaled_width, image.height / scaled_height
        box = (left * x, top * y, (left + width) * x, (top + height) * y)
        return image.resize(fitting.size, Image.Resampling.LANCZOS, box=box)
    if fitting.scaled is not None:
        image = image.resize(fitting.scaled, Image.Resampling.LANCZOS)
    pad_y, pad_x = height - scaled_height, width - scaled_width
    widths = [(pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2)]
    pixels = np.asarray(image)
    widths += [(0, 0)] * (pixels.ndim - 2)
    return Image.fromarray(np.pad(pixels, widths, mode="edge"))
