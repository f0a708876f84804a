"""The invisible watermark: it survives re-encoding the PNG, a fresh image does not carry it, an
image under 256×256 cannot, and `manage.py watermark check FILE` says which and exits 0/1/2/3."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo

from partyhub import watermark

ROOT = Path(__file__).resolve().parents[2]


def picture(seed, size=(512, 512)):
    """A test picture with shapes and soft gradients (not noise, which hides marks too easily)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    image = PILImage.fromarray(coarse).resize(size, PILImage.Resampling.BICUBIC)
    pixels = np.asarray(image).astype(np.int16) + rng.integers(-6, 7, (size[1], size[0], 3))
    return PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def png(image, **text):
    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def reencoded(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    with PILImage.open(io.BytesIO(buffer.getvalue())) as again:
        again.load()
        return again


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_watermark_survives_png_re_encoding(seed):
    marked = watermark.embed(picture(seed))
    for options in ({"compress_level": 0}, {"compress_level": 9}, {"optimize": True}):
        result = watermark.check(reencoded(marked, **options))
        assert result.status == watermark.FOUND, result
        assert result.matching_bits >= watermark.MIN_MATCHING_BITS
    # Through another mode and back (e.g. an editor that adds an alpha channel).
    with_alpha = reencoded(marked.convert("RGBA")).convert("RGB")
    assert watermark.check(with_alpha).status == watermark.FOUND


@pytest.mark.parametrize("seed", range(6))
def test_a_fresh_image_carries_no_watermark(seed):
    result = watermark.check(reencoded(picture(seed)))
    assert result.status == watermark.ABSENT, result
    assert result.matching_bits < watermark.MIN_MATCHING_BITS


def test_flat_and_noisy_images_carry_none_either():
    flat = PILImage.new("RGB", (300, 300), (128, 90, 200))
    noise = PILImage.fromarray(
        np.random.default_rng(7).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    )
    for image in (flat, noise):
        assert watermark.check(image).status == watermark.ABSENT
        assert watermark.check(watermark.embed(image)).status == watermark.FOUND


def test_the_mark_is_invisible():
    original = picture(4)
    marked = watermark.embed(original)
    difference = np.abs(np.asarray(marked, np.int16) - np.asarray(original, np.int16))
    assert difference.mean() < 3, "on average a few levels of 255"
    assert marked.size == original.size and marked.mode == "RGB"


def test_images_under_256_by_256_cannot_carry_one_and_are_never_upscaled():
    small = picture(5, (128, 128))
    assert watermark.check(small) == watermark.Check(watermark.TOO_SMALL, None)
    with pytest.raises(ValueError):
        watermark.embed(small)
    data = png(small, parameters="a chair")
    assert watermark.watermark_png(data) == (data, False), "the very same bytes"
    updated, marked = watermark.watermark_png(data, {"partyhub": "{}"})
    assert marked is False
    with PILImage.open(io.BytesIO(updated)) as image:
        assert image.size == (128, 128)
        assert image.text == {"parameters": "a chair", "partyhub": "{}"}
        assert np.array_equal(np.asarray(image), np.asarray(small))
    # By area, as imwatermark counts: 512×128 is as small as 256×256 is large enough.
    assert not watermark.can_carry(512, 127) and watermark.can_carry(256, 256)


def test_watermark_png_keeps_the_text_chunks_and_the_alpha():
    image = picture(6, (320, 256)).convert("RGBA")
    image.putalpha(200)
    data = png(image, parameters="two old people\nSteps: 4, Seed: 1", partyhub='{"party":"X"}')
    marked, flag = watermark.watermark_png(data, {"partyhub": '{"party":"X","votes":3}'})
    assert flag is True
    with PILImage.open(io.BytesIO(marked)) as result:
        result.load()
        assert result.format == "PNG" and result.mode == "RGBA" and result.size == (320, 256)
        assert result.text == {
            "parameters": "two old people\nSteps: 4, Seed: 1",
            "partyhub": '{"party":"X","votes":3}',
        }
        assert np.all(np.asarray(result)[:, :, 3] == 200)
        assert watermark.check(result).status == watermark.FOUND


def check_command(path):
    env = {**os.environ, "SECRET_KEY": "x", "DEBUG": "0"}
    return subprocess.run(
        [sys.executable, "manage.py", "watermark", "check", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_check_command_reads_it_back(tmp_path):
    marked, fresh, small, broken = (tmp_path / n for n in ("m.png", "f.png", "s.png", "b.png"))
    marked.write_bytes(watermark.watermark_png(png(picture(8)))[0])
    fresh.write_bytes(png(picture(8)))
    small.write_bytes(png(picture(8, (128, 128))))
    broken.write_bytes(b"not a picture")

    found = check_command(marked)
    assert found.returncode == 0, found.stderr
    assert "watermark found: 'PartyHub'" in found.stdout
    absent = check_command(fresh)
    assert absent.returncode == 1
    assert "no watermark" in absent.stdout
    too_small = check_command(small)
    assert too_small.returncode == 2
    assert "too small to carry a watermark" in too_small.stdout
    unreadable = check_command(broken)
    assert unreadable.returncode == 3
    assert "not a readable image" in unreadable.stderr
    assert check_command(tmp_path / "missing.png").returncode == 3
