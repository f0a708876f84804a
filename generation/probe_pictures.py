"""What the `overhead-pictures` probe "renders": pictures with the content of real renders, at
no model cost, so that `bench/worker.py --overhead` measures what PartyHub spends around a model.

A probe that returned blank or flat images would lie. On this project's machine a white
512x512 PNG compresses to 2 KB in 3 ms at Pillow's default level, one of these pictures to
about 450 KB in 50 ms, as a real render does; the write and every later copy scale with what
the picture holds. These pictures have the statistics of
photographs and renders: a 1/f amplitude spectrum (the best-known regularity of natural images,
detail at every scale), colour correlated across channels (luminance plus two weaker colour
planes), hard-edged shapes drawn over it, and a little per-pixel grain such as a VAE leaves.
They PNG-encode to about the size of a real 512x512 render (the benchmark reports the size).

`POOL` different pictures are built once per size with a fixed seed (about a second at
512x512, like loading weights; the benchmark's warm-up pays it). The "model" is then only
`decoded(slots)`: the slots' pictures copied out as one float tensor in [-1, 1], what a VAE
decode returns, which the engine turns into images as it turns any decode into images.
"""

import functools

POOL = 8


def decoded(slots):
    """The slots' pictures as a (batch, 3, height, width) float32 tensor in [-1, 1]: a fresh
    copy, as each decode is, the picture chosen by each slot's seed."""
    import torch

    params = slots[0].params
    pool = _pool(params["width"], params["height"])
    return pool[torch.tensor([slot.seed % POOL for slot in slots])]


@functools.lru_cache(maxsize=4)
def _pool(width, height):
    import numpy as np
    import torch

    rng = np.random.default_rng(19)
    return torch.from_numpy(np.stack([_picture(rng, width, height) for _ in range(POOL)]))


def _picture(rng, width, height):
    import numpy as np
    from PIL import Image, ImageDraw

    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :]
    frequency = np.hypot(fx, fy)
    frequency[0, 0] = 1.0

    def plane(strength):  # a 1/f-amplitude random field, scaled to about +-strength
        spectrum = rng.standard_normal(frequency.shape) + 1j * rng.standard_normal(frequency.shape)
        field = np.fft.irfft2(spectrum / frequency**1.4, s=(height, width))
        return field * (strength / (3 * field.std()))

    luma, blue, red = plane(0.8), plane(0.3), plane(0.3)
    # YCbCr to RGB: the channels move together, as in photographs.
    rgb = np.stack([luma + 1.4 * red, luma - 0.34 * blue - 0.71 * red, luma + 1.77 * blue])
    # A few shapes with hard edges and flat-ish fills, as renders have objects.
    shapes = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(shapes)
    for _ in range(6):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.05, 0.25) * min(width, height)
        fill = tuple(int(c) for c in rng.integers(0, 256, 3)) + (int(rng.integers(90, 200)),)
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        else:
            draw.polygon([(x + rng.uniform(-r, r), y + rng.uniform(-r, r)) for _ in range(4)], fill)
    over = np.asarray(shapes, dtype=np.float32).transpose(2, 0, 1) / 255.0
    alpha = over[3:]
    rgb = rgb * (1 - alpha) + (over[:3] * 2 - 1) * alpha
    rgb += rng.normal(0.0, 0.01, rgb.shape)  # a decoder's grain
    return np.clip(rgb, -1.0, 1.0).astype(np.float32)
