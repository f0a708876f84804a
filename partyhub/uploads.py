"""Images members upload as img2img sources and inpainting masks.

An upload is never stored as sent. Its bytes are checked here, one stable error code per rule,
before anything is written; then the decoded pixels are re-encoded as a PNG that PartyHub wrote
itself, so workers never decode a member's bytes (generation/modes.py opens uploads as PNG only).

Stored modes: an image with any alpha (an alpha channel or a transparent colour) is stored
"RGBA"; a grayscale or black-and-white one without alpha "L" (16-bit grayscale is scaled to 8
bits, not clipped); everything else "RGB". An EXIF orientation (phone photos) is applied, so
the stored pixels are the way every viewer shows the photo; `width` and `height` are those of the
stored image. Nothing but the pixels is kept: no text, EXIF or ICC profile of the member's.

Asked to `fit` the picture to a model ("crop" or "pad"), the upload is scaled, cropped or padded
to a size the model takes (generation/fitting.py), and the answer says what was done.
"""

import io
import secrets
import struct
import warnings

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image, ImageFile, UnidentifiedImageError

from core.errors import ApiError
from generation import fitting
from generation.presets import all_presets, default_preset, get_preset
from partyhub.models import Upload

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_SIDE = 4096
ACCEPTED_FORMATS = ["PNG", "JPEG", "WEBP"]
# Pillow calls a JPEG with a multi-picture index (many phone cameras write one) "MPO"; its first
# picture is the photo every viewer shows, so it is a JPEG here.
FORMAT_NAMES = {"MPO": "JPEG"}

GRAY_MODES = {"1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N"}
EXIF_ORIENTATION = 0x0112
EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
JPEG_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def accept_upload(party, member, uploaded_file, fit=None, model=None):
    """Check `uploaded_file` (a Django UploadedFile or None), store it as PNG; returns the row
    and, when `fit` ("crop" or "pad") asked for it, what fitting it to `model` (a preset name;
    the party's or the server's default model when None) did, as the API answers it.

    Raises ApiError (400) with a stable code, and stores nothing, when the file is refused.
    """
    preset = fit_preset(party, fit, model)
    data = read_limited(uploaded_file)
    image, source_format = decode(data)
    image = stored_mode(image)
    fitted = None
    if preset is not None:
        plan = fitting.plan(image.width, image.height, preset.limits, fit)
        image = fitting.apply(image, plan)
        fitted = fit_dict(plan, preset)
    png = encode_png(image)
    return store(party, member, png, source_format, image.size), fitted


def fit_preset(party, fit, model):
    """The preset an upload is fitted to, or None when no `fit` was asked for."""
    if fit is None:
        if model is not None:
            raise ApiError("invalid_fit", "model only says what to fit to: send fit too.")
        return None
    if fit not in fitting.FITS:
        raise ApiError("invalid_fit", f"fit must be one of {', '.join(fitting.FITS)}.")
    if model is None:
        model = party.defaults.get("model")
    preset = default_preset() if model is None else get_preset(model)
    if preset is None:
        raise ApiError("unknown_model", f"model must be one of {sorted(all_presets())}.")
    return preset


def fit_field(request, name):
    """The text field `name` ("fit" or "model") of an upload request, or None when absent.
    Sent twice, or as a file, it is refused: request.POST.get would quietly take the last value
    (or none), and which one the client meant is a guess."""
    values = request.POST.getlist(name)
    if len(values) > 1 or name in request.FILES:
        raise ApiError("invalid_fit", f"Send {name} once, as a text field.")
    return values[0] if values else None


def fit_dict(plan, preset):
    return {
        "how": plan.how,
        "model": preset.name,
        "from": list(plan.original),
        "scaled": list(plan.scaled) if plan.scaled else None,
        "to": list(plan.size),
        "changed": plan.changed,
        "message": plan.describe(),
    }


def upload_dict(upload, fitted=None):
    """The API's answer for an upload: `upload` is its id (protocol v1), the rest extends it;
    `fit`, what fitting did, only when the request asked for it."""
    answer = {
        "upload": upload.pk,
        "url": upload.file.url,
        "width": upload.width,
        "height": upload.height,
        "format": upload.source_format,
    }
    if fitted is not None:
        answer["fit"] = fitted
    return answer


def read_limited(uploaded_file):
    if uploaded_file is None:
        raise ApiError("missing_image", "Send the image as a multipart file field named image.")
    # The size Django counted while receiving it: checked before a single byte is decoded.
    if uploaded_file.size == 0:
        raise ApiError("empty_image", "The image file is empty.")
    if uploaded_file.size > MAX_UPLOAD_BYTES:
        raise ApiError(
            "upload_too_large",
            f"The image is {uploaded_file.size} bytes; at most {MAX_UPLOAD_BYTES} are accepted.",
        )
    uploaded_file.seek(0)
    return uploaded_file.read()


def decode(data):
    """The fully decoded image and the format its content (never its name) says it is."""
    # A process-wide switch that would let a cut-off file through as a half-grey image.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay off for uploads.")
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; any bomb is refused.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = open_image(data)
        check_size(image)
        load_pixels(image)
    source_format = FORMAT_NAMES.get(image.format, image.format)
    return upright(image), source_format


def open_image(data):
    """Read the header: format, mode and size. Pixels are not decoded yet."""
    try:
        return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow's own check, run on the size the header claims: the 4096 px cap below never
        # sees these, because they claim more than MAX_IMAGE_PIXELS (about 9459 x 9459).
        raise bomb(error) from None
    except UnidentifiedImageError:
        # Pillow refuses a PNG or JPEG claiming 0 pixels exactly as it refuses text.
        if claims_no_pixels(data):
            raise empty() from None
        raise ApiError(
            "unsupported_format", "Upload a PNG, JPEG or WebP image (checked by content)."
        ) from None
    except ValueError as error:
        raise damaged_or_bomb(error) from None
    except OSError:
        # The format was recognised but the header is cut short or unreadable (a lossy WebP
        # claiming 0 pixels is refused here by libwebp, hence the check).
        if claims_no_pixels(data):
            raise empty() from None
        raise truncated() from None


def check_size(image):
    # Read from the header, before decoding: only images within Pillow's bomb limit get here.
    if image.width > MAX_SIDE or image.height > MAX_SIDE:
        raise ApiError(
            "image_too_large",
            f"The image is {image.width}x{image.height}; at most {MAX_SIDE} pixels a side.",
        )
    # Refused rather than silently reduced to one frame: which frame was meant is a guess.
    if image.format != "MPO" and getattr(image, "is_animated", False):
        raise ApiError("animated_image", "Upload a still image, not an animation.")


def load_pixels(image):
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise bomb(error) from None
    except ValueError as error:
        raise damaged_or_bomb(error) from None
    except (OSError, SyntaxError, EOFError):
        raise truncated() from None


def damaged_or_bomb(error):
    # Pillow's PNG reader raises ValueError naming MAX_TEXT_CHUNK / MAX_TEXT_MEMORY when a
    # compressed text or ICC chunk inflates past its limits: a decompression bomb too.
    if "MAX_TEXT" in str(error):
        return bomb(error)
    return truncated()


def bomb(error):
    return ApiError("decompression_bomb", f"Refused as a decompression bomb: {error}")


def empty():
    return ApiError("empty_image", "The image has no pixels (0 wide or 0 high).")


def truncated():
    return ApiError("truncated_image", "The image data is cut short or damaged.")


def claims_no_pixels(data):
    """Whether `data` is a PNG, JPEG or lossy WebP whose header declares 0 width or height."""
    size = png_size(data) or jpeg_size(data) or webp_vp8_size(data)
    return size is not None and 0 in size


def png_size(data):
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    return None


def jpeg_size(data):
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    # Walk the marker segments up to the frame header (SOFn), which holds height then width.
    while pos + 9 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in JPEG_SOF_MARKERS:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return None


def webp_vp8_size(data):
    # Only the lossy "VP8 " bitstream can declare 0: VP8L and VP8X store the size minus one.
    if len(data) >= 30 and data[8:16] == b"WEBPVP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def upright(image):
    # Not ImageOps.exif_transpose: it re-serialises the EXIF block, which raises on corrupt
    # tags. Only the orientation is needed; an unreadable one counts as none, as in viewers.
    orientation = image.getexif().get(EXIF_ORIENTATION)
    method = EXIF_TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


def stored_mode(image):
    """The image in the mode it is stored in: RGBA, L or RGB."""
    if image.has_transparency_data:
        return image.convert("RGBA")
    if image.mode in GRAY_MODES:
        return to_gray(image)
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def encode_png(image):
    image = stored_mode(image)
    # Only the pixels are kept: the member's metadata (text, EXIF, ICC profile) is dropped.
    image = Image.frombytes(image.mode, image.size, image.tobytes())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def to_gray(image):
    if image.mode.startswith("I"):
        # 16-bit samples: convert("L") would clip everything above 255 to white.
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    return image.convert("L")


def store(party, member, png, source_format, size):
    """Save the file and its row together: if the row cannot be written, the file goes too."""
    name = default_storage.save(
        f"parties/{party.code}/uploads/u{secrets.token_hex(8)}.png", ContentFile(png)
    )
    try:
        with transaction.atomic():
            return Upload.objects.create(
                party=party,
                member=member,
                file=name,
                source_format=source_format,
                width=size[0],
                height=size[1],
            )
    except BaseException:
        default_storage.delete(name)
        raise
