"""An invisible watermark in exported images, as Stable Diffusion XL marks its outputs.

The `invisible-watermark` package hides MESSAGE's 64 bits in the DCT blocks of the Haar-wavelet
approximation of the image's colour (chroma). SDXL uses its `dwtDct` method; PartyHub uses
`dwtDctSvd`, the same transform with the bit in each block's largest singular value: measured on
smooth pictures (docs/performance.md), dwtDct read back only 49 to 59 of 64 bits after a lossless
round trip, too few to tell a mark from chance, while dwtDctSvd read back all 64, at about five
times the cost. A mark survives lossless re-encoding and mild changes; it is not a security
feature: anyone who knows the method can remove it.

The method needs at least 256×256 pixels (its own check, by area) to spread the bits, and the
offline model draws 128×128 by default: smaller images are never upscaled to take a mark, they
are exported as they are and the manifest says so. A mark that does not read back (a blank white
image cannot hold one) is not written either. No Django imports: the export and the
`manage.py watermark` command both call this.
"""

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo

MESSAGE = b"PartyHub"
BITS = len(MESSAGE) * 8
METHOD = "dwtDctSvd"
MIN_PIXELS = 256 * 256  # imwatermark refuses anything smaller (width × height)
# A mark may come back with a few bits wrong after changes to the image; 56 of 64 bits or more
# is still a match that random bits reach with a probability of about 3e-10.
MIN_MATCHING_BITS = 56

FOUND, ABSENT, TOO_SMALL = "found", "absent", "too_small"


@dataclass(frozen=True)
class Check:
    status: str  # FOUND, ABSENT or TOO_SMALL
    matching_bits: int | None  # of BITS; None when the image is too small to carry a mark


def can_carry(width, height):
    return width * height >= MIN_PIXELS


def embed(image):
    """`image` (a PIL image) with the watermark; ValueError if it is too small to carry one."""
    if not can_carry(*image.size):
        raise ValueError(f"{image.size[0]}×{image.size[1]} is under {MIN_PIXELS} pixels")
    from imwatermark import WatermarkEncoder  # imports OpenCV: only when an export needs it

    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", MESSAGE)
    bgr = encoder.encode(_bgr(image), METHOD)
    marked = PILImage.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]), "RGB")
    if alpha is not None:
        marked.putalpha(alpha)
    return marked


def check(image):
    """Whether a PIL image carries PartyHub's watermark."""
    if not can_carry(*image.size):
        return Check(TOO_SMALL, None)
    from imwatermark import WatermarkDecoder

    decoded = WatermarkDecoder("bytes", BITS).decode(_bgr(image), METHOD)
    expected = np.unpackbits(np.frombuffer(MESSAGE, np.uint8))
    matching = int((np.unpackbits(np.frombuffer(decoded, np.uint8)) == expected).sum())
    return Check(FOUND if matching >= MIN_MATCHING_BITS else ABSENT, matching)


def watermark_png(data, text=None):
    """A PNG's bytes with the watermark in its pixels, its text chunks (`parameters`, `partyhub`,
    any others) kept and those in `text` set; returns (bytes, watermarked). An image too small
    to carry a mark, or one whose mark does not read back, keeps its pixels (and, with no
    `text`, its bytes)."""
    with PILImage.open(io.BytesIO(data), formats=["PNG"]) as image:
        image.load()
        pixels = image
        if can_carry(*image.size):
            marked = embed(image)
            if check(marked).status == FOUND:
                pixels = marked
        if pixels is image and not text:
            return data, False
        info = PngInfo()
        for key, value in {**image.text, **(text or {})}.items():
            info.add_text(key, value)
        buffer = io.BytesIO()
        pixels.save(buffer, format="PNG", pnginfo=info, dpi=image.info.get("dpi"))
        return buffer.getvalue(), pixels is not image


def _bgr(image):
    """OpenCV's channel order, which imwatermark expects (it converts BGR to YUV)."""
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
