"""POST /api/parties/<code>/uploads: every hostile file is crafted here, in memory.

Kept in one piece (past 400 lines): the crafted files build on each other (chunks, ICC
profiles, bombs), and each check of the upload path sits beside the file that tries it."""

import io
import struct
import zlib

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image, ImageCms, ImageFile, PngImagePlugin

from partyhub.models import Party, Upload
from partyhub.uploads import MAX_UPLOAD_BYTES

pytestmark = pytest.mark.django_db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- crafting files ----------------------------------------------------------------------------


def encoded(image, format, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def noise(size, mode="RGB"):
    # Noise does not compress, so cutting the file in half really cuts the pixel data.
    return Image.effect_noise(size, 64).convert(mode)


def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_claiming(width, height):
    """A small valid PNG whose IHDR is rewritten (CRC fixed) to claim `width` x `height`."""
    data = encoded(Image.new("RGB", (8, 8), "red"), "PNG")
    # signature (8) + IHDR length and tag (8) + width, height (8) + 5 more header bytes + CRC
    ihdr = struct.pack(">II", width, height) + data[24:29]
    return data[:8] + png_chunk(b"IHDR", ihdr) + data[33:]


def png_with_ztxt_bomb():
    """A valid 8x8 PNG with a zTXt chunk of 12 KB that inflates to 50 MB of zeros."""
    data = encoded(Image.new("RGB", (8, 8), "red"), "PNG")
    bomb = png_chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(b"\0" * 50_000_000, 9))
    return data[:33] + bomb + data[33:]


def jpeg_claiming_zero_width():
    data = bytearray(encoded(Image.new("RGB", (16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    data[sof + 7 : sof + 9] = b"\0\0"
    return bytes(data)


def webp_claiming_zero_width():
    data = bytearray(encoded(Image.new("RGB", (16, 16), "red"), "WEBP", lossless=False))
    start = data.index(b"\x9d\x01\x2a")  # VP8 key frame start code, then 14-bit width, height
    data[start + 3 : start + 5] = b"\0\0"
    return bytes(data)


def half(data):
    return data[: len(data) // 2]


# --- helpers -----------------------------------------------------------------------------------


def upload(person, party, data, name="picture.png", **kwargs):
    file = SimpleUploadedFile(name, data, content_type="image/png")
    return person.client.post(f"/api/parties/{party.code}/uploads", {"image": file}, **kwargs)


def error_code(response):
    assert response["Content-Type"] == "application/json", response.content[:200]
    return response.json()["error"]["code"]


def stored_files():
    media = settings.MEDIA_ROOT
    return sorted(p for p in media.rglob("*") if p.is_file()) if media.exists() else []


def assert_refused(response, status, code):
    assert (response.status_code, error_code(response)) == (status, code)
    assert not Upload.objects.exists()
    assert stored_files() == []


def open_stored(upload_row):
    with default_storage.open(upload_row.file.name) as stored:
        image = Image.open(stored)
        image.load()
    return image


# --- accepted uploads --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("format", "options"),
    [("PNG", {}), ("JPEG", {"quality": 90}), ("WEBP", {"lossless": True})],
)
def test_png_jpeg_and_webp_are_stored_as_png(party, guest, format, options):
    response = upload(guest, party, encoded(noise((40, 30)), format, **options), name="x.bin")

    assert response.status_code == 201
    body = response.json()
    row = Upload.objects.get()
    assert body == {
        "upload": row.pk,
        "url": f"/media/parties/{party.code}/uploads/{row.file.name.rsplit('/', 1)[1]}",
        "width": 40,
        "height": 30,
        "format": format,
    }
    assert row.file.name.startswith(f"parties/{party.code}/uploads/u")
    assert row.file.name.endswith(".png")
    assert (row.party, row.member.session_key) == (party, guest.session_key)
    assert (row.source_format, row.width, row.height) == (format, 40, 30)
    stored = open_stored(row)
    assert (stored.format, stored.mode, stored.size) == ("PNG", "RGB", (40, 30))


def test_the_stored_pixels_are_the_uploaded_ones(party, guest):
    original = noise((33, 17))
    upload(guest, party, encoded(original, "PNG"))

    assert open_stored(Upload.objects.get()).tobytes() == original.tobytes()


@pytest.mark.parametrize(
    ("image", "stored_mode"),
    [
        (Image.new("RGBA", (8, 8), (255, 0, 0, 128)), "RGBA"),
        (Image.new("LA", (8, 8), (100, 128)), "RGBA"),
        (Image.new("L", (8, 8), 100), "L"),
        (Image.new("1", (8, 8), 1), "L"),
        (Image.new("P", (8, 8), 3), "RGB"),
    ],
    ids=["RGBA", "LA", "L", "1", "P"],
)
def test_alpha_stays_gray_stays_gray_everything_else_is_rgb(party, guest, image, stored_mode):
    upload(guest, party, encoded(image, "PNG"))

    assert open_stored(Upload.objects.get()).mode == stored_mode


def test_a_palette_png_with_a_transparent_colour_keeps_it_as_alpha(party, guest):
    image = Image.new("P", (8, 8), 3)
    image.putpalette(range(48))  # 16 colours, so the saved PNG keeps index 3 as it is
    upload(guest, party, encoded(image, "PNG", transparency=3))

    assert open_stored(Upload.objects.get()).getpixel((0, 0))[3] == 0


def test_16_bit_grayscale_is_scaled_to_8_bits_not_clipped(party, guest):
    image = Image.new("I;16", (2, 1))
    image.putpixel((0, 0), 65535)
    image.putpixel((1, 0), 32768)
    upload(guest, party, encoded(image, "PNG"))

    stored = open_stored(Upload.objects.get())
    assert (stored.mode, stored.getpixel((0, 0)), stored.getpixel((1, 0))) == ("L", 255, 128)


def test_a_jpeg_is_stored_the_way_its_exif_orientation_shows_it(party, guest):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    response = upload(guest, party, encoded(Image.new("RGB", (40, 20)), "JPEG", exif=exif))

    assert (response.json()["width"], response.json()["height"]) == (20, 40)
    assert open_stored(Upload.objects.get()).size == (20, 40)


def test_a_multi_picture_jpeg_is_a_jpeg_and_its_first_picture_is_stored(party, guest):
    first, second = Image.new("RGB", (24, 16), "red"), Image.new("RGB", (24, 16), "blue")
    response = upload(guest, party, encoded(first, "MPO", save_all=True, append_images=[second]))

    assert response.status_code == 201
    assert response.json()["format"] == "JPEG"
    red, green, blue = open_stored(Upload.objects.get()).getpixel((12, 8))
    assert red > 200 and blue < 50


def test_only_the_pixels_are_stored_not_the_member_s_metadata(party, guest):
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "hello")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    upload(guest, party, encoded(noise((8, 8)), "PNG", pnginfo=info, icc_profile=icc))

    stored = open_stored(Upload.objects.get())
    assert stored.text == {}
    assert "icc_profile" not in stored.info


def test_an_image_4096_pixels_wide_is_accepted(party, guest):
    response = upload(guest, party, encoded(Image.new("L", (4096, 1)), "PNG"))

    assert (response.status_code, response.json()["width"]) == (201, 4096)


def test_uploads_get_their_own_files(party, host, guest):
    upload(host, party, encoded(noise((8, 8)), "PNG"))
    upload(guest, party, encoded(noise((8, 8)), "PNG"))

    assert len({row.file.name for row in Upload.objects.all()}) == 2
    assert len(stored_files()) == 2


# --- refused files: each with its own code, nothing stored -------------------------------------


def test_no_image_field_is_missing_image(party, guest):
    response = guest.client.post(f"/api/parties/{party.code}/uploads", {"picture": "x"})

    assert_refused(response, 400, "missing_image")


def test_image_sent_as_a_text_field_is_missing_image(party, guest):
    response = guest.client.post(f"/api/parties/{party.code}/uploads", {"image": "abc"})

    assert_refused(response, 400, "missing_image")


def test_a_json_body_is_missing_image(party, guest):
    response = guest.post_json(f"/api/parties/{party.code}/uploads", {"image": "abc"})

    assert_refused(response, 400, "missing_image")


def test_a_zero_byte_file_is_empty_image(party, guest):
    assert_refused(upload(guest, party, b""), 400, "empty_image")


@pytest.mark.parametrize(
    "data",
    [png_claiming(0, 8), png_claiming(8, 0), jpeg_claiming_zero_width()],
    ids=["png-0-wide", "png-0-high", "jpeg-0-wide"],
)
def test_an_image_of_zero_pixels_is_empty_image(party, guest, data):
    assert_refused(upload(guest, party, data), 400, "empty_image")


def test_a_lossy_webp_of_zero_pixels_is_empty_image(party, guest):
    assert_refused(upload(guest, party, webp_claiming_zero_width()), 400, "empty_image")


def test_one_byte_over_10_mb_is_upload_too_large_before_any_decoding(party, guest):
    # A valid PNG header followed by junk: had it been decoded, it would be truncated_image.
    data = encoded(Image.new("RGB", (8, 8)), "PNG")[:33]
    data += b"\0" * (MAX_UPLOAD_BYTES + 1 - len(data))

    assert_refused(upload(guest, party, data), 400, "upload_too_large")


def test_exactly_10_mb_passes_the_size_check(party, guest):
    # Random bytes, so the next check refuses it: the answer is still JSON from the view.
    data = b"\x01" * MAX_UPLOAD_BYTES

    assert_refused(upload(guest, party, data), 400, "unsupported_format")


@pytest.mark.parametrize(
    "data",
    [
        encoded(Image.new("RGB", (8, 8)), "GIF"),
        encoded(Image.new("RGB", (8, 8)), "BMP"),
        encoded(Image.new("RGB", (8, 8)), "TIFF"),
        b"just some text, saved as picture.png\n",
        bytes(range(256)) * 4,
    ],
    ids=["gif", "bmp", "tiff", "text", "random"],
)
def test_other_content_named_png_is_unsupported_format(party, guest, data):
    assert_refused(upload(guest, party, data, name="picture.png"), 400, "unsupported_format")


def test_more_than_4096_pixels_a_side_is_image_too_large(party, guest):
    # A real 4097x1 image: its pixels are valid, only its width is refused.
    response = upload(guest, party, encoded(Image.new("L", (4097, 1)), "PNG"))

    assert_refused(response, 400, "image_too_large")


def test_a_header_claiming_5000x5000_is_image_too_large_without_decoding(party, guest):
    # 25 Mpx is under Pillow's bomb limit (89.5 Mpx): our check on the header fires; the pixel
    # data behind it is 8x8's, so decoding it would have been truncated_image.
    assert_refused(upload(guest, party, png_claiming(5000, 5000)), 400, "image_too_large")


def test_a_header_claiming_30000x30000_is_a_decompression_bomb(party, guest):
    # 900 Mpx is over twice Pillow's MAX_IMAGE_PIXELS: Image.open raises DecompressionBombError
    # itself, before our 4096 px check could see the size.
    data = png_claiming(30000, 30000)
    assert len(data) < 100

    assert_refused(upload(guest, party, data), 400, "decompression_bomb")


def test_a_header_claiming_10000x10000_is_a_decompression_bomb(party, guest):
    # 100 Mpx is between MAX_IMAGE_PIXELS and twice it: Pillow only warns; the warning is
    # promoted to an error.
    assert_refused(upload(guest, party, png_claiming(10000, 10000)), 400, "decompression_bomb")


def test_a_compressed_text_chunk_that_inflates_to_50_mb_is_a_decompression_bomb(party, guest):
    data = png_with_ztxt_bomb()
    assert len(data) < 100_000

    assert_refused(upload(guest, party, data), 400, "decompression_bomb")


@pytest.mark.parametrize(
    "data",
    [
        half(encoded(noise((256, 256)), "PNG")),
        half(encoded(noise((256, 256)), "JPEG")),
        half(encoded(noise((256, 256)), "WEBP")),
        encoded(noise((8, 8)), "PNG")[:20],
    ],
    ids=["png-half", "jpeg-half", "webp-half", "png-header-cut"],
)
def test_a_file_cut_short_is_truncated_image(party, guest, data):
    assert_refused(upload(guest, party, data), 400, "truncated_image")


def test_cut_at_any_point_a_png_is_refused_with_a_code_never_a_crash(party, guest):
    data = encoded(noise((16, 16)), "PNG")
    for end in range(1, len(data) - 12, 37):  # up to the IEND chunk, which carries no pixels
        response = upload(guest, party, data[:end])
        assert response.status_code == 400, end
        assert error_code(response) in {"unsupported_format", "truncated_image"}, end
    assert not Upload.objects.exists()


def test_truncated_images_are_not_loaded_leniently():
    import generation.modes  # noqa: F401 -- whatever the app imports must not switch it on
    import partyhub.views  # noqa: F401

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("format", ["PNG", "WEBP"])
def test_an_animation_is_animated_image(party, guest, format):
    frames = [Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")]
    data = encoded(frames[0], format, save_all=True, append_images=frames[1:])

    assert_refused(upload(guest, party, data), 400, "animated_image")


def test_a_row_that_cannot_be_written_leaves_no_file(party, guest, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(Upload.objects, "create", fail)
    with pytest.raises(RuntimeError):
        upload(guest, party, encoded(noise((8, 8)), "PNG"))

    assert stored_files() == []


# --- who may upload ----------------------------------------------------------------------------


def test_the_host_may_upload(party, host):
    assert upload(host, party, encoded(noise((8, 8)), "PNG")).status_code == 201


def test_an_outsider_of_a_private_party_cannot_upload(party, outsider):
    response = upload(outsider, party, encoded(noise((8, 8)), "PNG"))

    assert_refused(response, 403, "not_a_member")


def test_an_outsider_of_a_public_party_cannot_upload(party, outsider):
    Party.objects.filter(pk=party.pk).update(public=True)

    response = upload(outsider, party, encoded(noise((8, 8)), "PNG"))

    assert_refused(response, 403, "not_a_member")


def test_an_unknown_party_is_not_found(party, guest):
    party.code = "ZZZZZZ"

    assert_refused(upload(guest, party, encoded(noise((8, 8)), "PNG")), 404, "not_found")


def test_the_code_may_be_typed_in_lower_case(party, guest):
    party.code = party.code.lower()

    assert upload(guest, party, encoded(noise((8, 8)), "PNG")).status_code == 201


def test_get_is_method_not_allowed(party, guest):
    response = guest.client.get(f"/api/parties/{party.code}/uploads")

    assert (response.status_code, error_code(response)) == (405, "method_not_allowed")


# --- CSRF, as for every POST -------------------------------------------------------------------


def browser_member(party):
    """A browser that enforces CSRF, with its csrftoken cookie, joined to `party`."""
    browser = Client(enforce_csrf_checks=True)
    browser.get("/")
    token = browser.cookies["csrftoken"].value
    response = browser.post(
        f"/api/parties/{party.code}/join",
        '{"name": "Cat"}',
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200
    return browser, token


def test_an_upload_without_the_csrf_token_is_refused(party):
    browser, _ = browser_member(party)
    image = SimpleUploadedFile("x.png", encoded(noise((8, 8)), "PNG"))

    response = browser.post(f"/api/parties/{party.code}/uploads", {"image": image})

    assert_refused(response, 403, "csrf_failed")


def test_an_upload_over_django_s_2_5_mb_memory_limits_passes_csrf_and_is_stored(party):
    # The CSRF middleware parses the multipart body first; a file field is not limited by
    # DATA_UPLOAD_MAX_MEMORY_SIZE and one over FILE_UPLOAD_MAX_MEMORY_SIZE goes to a temp file.
    browser, token = browser_member(party)
    data = encoded(noise((1100, 1100)), "PNG")
    assert data_upload_limits_are_below(len(data))
    image = SimpleUploadedFile("x.png", data)

    response = browser.post(
        f"/api/parties/{party.code}/uploads", {"image": image}, headers={"X-CSRFToken": token}
    )

    assert response.status_code == 201
    assert Upload.objects.get().width == 1100


def test_an_upload_over_10_mb_through_csrf_is_json_upload_too_large(party):
    browser, token = browser_member(party)
    image = SimpleUploadedFile("x.png", b"\0" * (MAX_UPLOAD_BYTES + 1))

    response = browser.post(
        f"/api/parties/{party.code}/uploads", {"image": image}, headers={"X-CSRFToken": token}
    )

    assert_refused(response, 400, "upload_too_large")


def data_upload_limits_are_below(size):
    return (
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE < size and settings.FILE_UPLOAD_MAX_MEMORY_SIZE < size
    )


def test_a_form_field_over_djangos_limit_is_a_json_error(party, host):
    # Django refuses a non-file field over DATA_UPLOAD_MAX_MEMORY_SIZE before the view runs.
    response = host.client.post(
        f"/api/parties/{party.code}/uploads", {"note": "x" * (3 * 1024 * 1024)}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
