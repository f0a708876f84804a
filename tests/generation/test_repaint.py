"""Repaint (inpaint) masks on the engine's side: which latent cells are repainted, and which
pixels of the result are the source's own. No database, no model."""

import numpy as np
import torch
from diffusers.image_processor import VaeImageProcessor
from PIL import Image

from generation.modes import Slot, cell_mask, keep_unmasked, painted

SIZE = {"width": 64, "height": 64}


def stroke(rows, size=64):
    """A white horizontal band over `rows` on black, as the room paints a mask."""
    pixels = np.zeros((size, size), np.uint8)
    pixels[rows, 8:56] = 255
    return Image.fromarray(pixels)


def diffusers_latent_mask(mask):
    """What StableDiffusionInpaintPipeline makes of a mask: binarised, then shrunk to the
    latents by nearest-neighbour sampling (one pixel of each 8×8 cell)."""
    processor = VaeImageProcessor(
        vae_scale_factor=8, do_normalize=False, do_binarize=True, do_convert_grayscale=True
    )
    tensor = processor.preprocess(mask, height=mask.height, width=mask.width)
    return torch.nn.functional.interpolate(tensor, size=(mask.height // 8, mask.width // 8))[0, 0]


def test_a_thin_stroke_is_lost_by_diffusers_own_mask_and_kept_by_the_cell_mask():
    # Rows 10 to 13: no cell's sampled pixel (rows 0, 8, 16, ...) is painted.
    mask = stroke(slice(10, 14))
    assert diffusers_latent_mask(mask).sum() == 0  # the repaint would change nothing
    latent = diffusers_latent_mask(cell_mask(painted(mask, SIZE), 8))
    assert latent[1, 1:7].tolist() == [1.0] * 6 and latent.sum() == 6  # the cells it crosses


def test_every_cell_a_stroke_touches_is_repainted_and_no_other():
    mask = stroke(slice(14, 26))  # rows 14 to 25: cells 1, 2 and 3
    grown = np.asarray(cell_mask(painted(mask, SIZE), 8))
    assert (grown[8:32, 8:56] == 255).all()
    assert (grown[:8] == 0).all() and (grown[32:] == 0).all()
    # diffusers alone keeps only the cells whose top-left pixel is painted: 2 of the 3 rows.
    assert diffusers_latent_mask(mask)[:, 1].tolist()[:5] == [0, 0, 1, 1, 0]


def test_white_is_repainted_whatever_the_mask_s_mode_and_size():
    rgba = Image.new("RGBA", (32, 32), (0, 0, 0, 255))
    rgba.paste((255, 255, 255, 255), (0, 0, 16, 32))
    mask = np.asarray(painted(rgba, SIZE))  # a 32×32 mask for a 64×64 render
    assert mask.shape == (64, 64)
    assert (mask[:, :32] == 255).all() and (mask[:, 32:] == 0).all()
    gray = Image.new("L", (64, 64), 127)  # under half white: kept, as diffusers binarises
    assert np.asarray(painted(gray, SIZE)).max() == 0


def test_outside_the_painted_part_the_result_is_the_source_pixel_for_pixel():
    source = Image.new("RGB", (64, 64), (200, 30, 30))
    mask = stroke(slice(16, 40))
    slot = Slot("p", {**SIZE, "mode": "inpaint"}, 1, source=source, mask=mask)
    repainted = Image.new("RGB", (64, 64), (20, 20, 220))
    (result,) = keep_unmasked([slot], [repainted])
    pixels = np.asarray(result).astype(int)
    inside = np.asarray(mask) == 255
    assert (pixels[~inside] == (200, 30, 30)).all()
    # Well inside the stroke the repaint; at its edge a few pixels blend towards the source.
    assert (pixels[24:32, 16:48] == (20, 20, 220)).all()
    assert 20 < pixels[16, 32, 2] < 220
