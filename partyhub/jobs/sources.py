"""The source images a render starts from, read from storage as PIL images for the engine."""

from django.core.files.storage import default_storage
from PIL import Image as PILImage

from partyhub.models import Image, Upload


def sources_of(params):
    """(source, mask) for img2img and inpaint (the mask None for img2img), else (None, None): a
    variation starts from its image's seed, not its pixels."""
    if params["mode"] not in ("img2img", "inpaint"):
        return None, None
    if "init_image" in params:
        name = Image.objects.values_list("file", flat=True).get(pk=params["init_image"])
    else:
        name = _upload_file(params["init_upload"])
    mask = open_stored_png(_upload_file(params["mask"])) if params["mode"] == "inpaint" else None
    return open_stored_png(name), mask


def _upload_file(pk):
    return Upload.objects.values_list("file", flat=True).get(pk=pk)


def open_stored_png(name):
    # Only PNGs PartyHub wrote itself are ever opened here: uploads were re-encoded on arrival.
    with default_storage.open(name) as stored:
        image = PILImage.open(stored, formats=["PNG"])
        image.load()
    return image
