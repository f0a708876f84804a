"""Upload validation fuzzed over raw bytes with Hypothesis (issue 7, item 11): whatever arrives,
decoding either yields an image within the limits or refuses it with one of the documented
codes. Never another exception, never a hang: each example has a deadline.

The examples are derandomised, so a CI run is repeatable; PARTYHUB_FUZZ_EXAMPLES runs more (and
PARTYHUB_FUZZ_RANDOM=1 draws fresh ones) for a longer hunt, e.g. before a Pillow upgrade."""

import io
import os
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.errors import ApiError
from partyhub.uploads import MAX_SIDE, decode, encode_png

EXAMPLES = int(os.environ.get("PARTYHUB_FUZZ_EXAMPLES", "300"))
REFUSALS = {
    "unsupported_format",
    "truncated_image",
    "empty_image",
    "image_too_large",
    "animated_image",
    "decompression_bomb",
}
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=5),  # a hang fails the example; real decodes take milliseconds
    derandomize=os.environ.get("PARTYHUB_FUZZ_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def encoded(format, size=(24, 16), **options):
    out = io.BytesIO()
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.save(out, format, **options)
    return out.getvalue()


# Real files of each accepted format (and two refused ones) for the mutations to start from.
SEEDS = [
    encoded("PNG"),
    encoded("PNG", optimize=True),
    encoded("JPEG", quality=80),
    encoded("JPEG", progressive=True),
    encoded("WEBP", quality=80),
    encoded("WEBP", lossless=True),
    encoded("GIF"),
    encoded("BMP"),
]


@st.composite
def mutated(draw):
    """A real file with a few bytes overwritten, a piece cut out or repeated, or cut short."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["overwrite", "delete", "repeat", "truncate"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "overwrite":
            piece = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(piece)] = piece
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        else:
            del data[at:]
        if not data:
            break
    return bytes(data)


def check(data):
    try:
        image, source_format = decode(data)
    except ApiError as refusal:
        assert refusal.code in REFUSALS, refusal.code
        return
    # Accepted: a still image within the limits, in an accepted format, that encodes.
    assert source_format in {"PNG", "JPEG", "WEBP"}
    assert 0 < image.width <= MAX_SIDE and 0 < image.height <= MAX_SIDE
    assert encode_png(image)[:8] == b"\x89PNG\r\n\x1a\n"


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_are_refused_with_a_code_or_accepted_whole(data):
    check(data)


@FUZZ
@given(mutated())
def test_damaged_real_files_are_refused_with_a_code_or_accepted_whole(data):
    check(data)


@pytest.mark.parametrize("seed", SEEDS[:6])
def test_the_seeds_themselves_are_accepted(seed):
    image, _ = decode(seed)
    assert image.size == (24, 16)
