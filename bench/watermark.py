"""The export's invisible watermark: how long marking one image takes, and the two methods.

Draws smooth test pictures (random low-frequency colour fields, like rendered images and unlike
noise), then times, per image after one warm-up, for both `dwtDct` (SDXL's method) and
`dwtDctSvd` (PartyHub's): embedding the mark, reading it back, and how many of its 64 bits come
back after a lossless PNG round trip. Then the whole export step (`watermark.watermark_png`:
decode, embed, check, encode with the text chunks) with PartyHub's method.

This is a benchmark, not a test:

    .venv/bin/python bench/watermark.py [--size 512] [--images 15]
"""

import argparse
import io
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from partyhub import watermark  # noqa: E402


def smooth_picture(rng, size):
    """A random 8×8 colour field scaled up smoothly: the kind of picture a render is."""
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return PILImage.fromarray(small).resize((size, size), PILImage.BICUBIC)


def png_bytes(image, text=None):
    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def bits_back(bgr, method):
    from imwatermark import WatermarkDecoder

    decoded = WatermarkDecoder("bytes", watermark.BITS).decode(bgr, method)
    expected = np.unpackbits(np.frombuffer(watermark.MESSAGE, np.uint8))
    return int((np.unpackbits(np.frombuffer(decoded, np.uint8)) == expected).sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--images", type=int, default=15)
    args = parser.parse_args()
    from imwatermark import WatermarkEncoder

    rng = np.random.default_rng(0)
    pictures = [smooth_picture(rng, args.size) for _ in range(args.images + 1)]
    print(
        f"{platform.processor() or platform.machine()}, {args.size}×{args.size}, "
        f"{args.images} images (after one warm-up), medians"
    )
    for method in ("dwtDct", "dwtDctSvd"):
        embed_ms, check_ms, bits = [], [], []
        for n, picture in enumerate(pictures):
            encoder = WatermarkEncoder()
            encoder.set_watermark("bytes", watermark.MESSAGE)
            bgr = np.ascontiguousarray(np.asarray(picture)[:, :, ::-1])
            start = time.perf_counter()
            marked = encoder.encode(bgr, method)
            embedded = time.perf_counter()
            # A lossless round trip, as the PNG in the ZIP is.
            reread = PILImage.open(io.BytesIO(png_bytes(PILImage.fromarray(marked[:, :, ::-1]))))
            reread_bgr = np.ascontiguousarray(np.asarray(reread.convert("RGB"))[:, :, ::-1])
            checked = time.perf_counter()
            matching = bits_back(reread_bgr, method)
            done = time.perf_counter()
            if n:
                embed_ms.append(1000 * (embedded - start))
                check_ms.append(1000 * (done - checked))
                bits.append(matching)
        print(
            f"{method:10s} embed {statistics.median(embed_ms):6.1f} ms   "
            f"read back {statistics.median(check_ms):6.1f} ms   "
            f"bits back after a PNG round trip: {min(bits)}–{max(bits)} of {watermark.BITS}"
        )
    export_ms = []
    for n, picture in enumerate(pictures):
        data = png_bytes(picture, {"parameters": "a test", "partyhub": "{}"})
        start = time.perf_counter()
        _, marked = watermark.watermark_png(data)
        if n:
            export_ms.append(1000 * (time.perf_counter() - start))
        assert marked, "a smooth picture of this size always takes the mark"
    print(f"export step (decode, embed, check, encode): {statistics.median(export_ms):.0f} ms")


if __name__ == "__main__":
    main()
