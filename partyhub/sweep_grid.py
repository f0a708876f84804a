"""A sweep's grid as one labelled picture, for the export beside its cells' own images
(AUTOMATIC1111's X/Y plot saves one too): the x values across the top, the y values down the
left, in each cell the first image of its render."""

import io

from PIL import Image as PILImage
from PIL import ImageDraw, ImageOps

from partyhub.contact_sheet import BOLD_FILES, fit_line, font
from partyhub.models.sweep import PARAM_AXES
from partyhub.zip_names import entry_name

CELL = 256  # each image fitted into a square this large
GAP = 8
LABEL_SIZE = 22
TOP = 2 * LABEL_SIZE + 2 * GAP
SIDE = 200  # the row labels' column, when there is a y axis
INK, PAPER, EMPTY = (20, 20, 20), (255, 255, 255), (225, 225, 225)


def grid_path(sweep_id):
    return entry_name("images", f"sweep-{sweep_id}.png")


def manifest_entry(sweep):
    """A sweep as the manifest lists it: as in the protocol, and where its grid lies in the ZIP."""
    return {**sweep.as_dict(), "file": grid_path(sweep.pk)}


def label(axis, value):
    """What a row or column is called: the words it added, or `steps 20`."""
    return f"{axis} {value}" if axis in PARAM_AXES else str(value)


def grid_png(sweep, first_images):
    """The grid as PNG bytes. sweep: a manifest entry; first_images: {prompt id: PNG bytes of
    the first image its render made}. A cell whose render made none is left grey, marked."""
    x, y = sweep["x"], sweep["y"]
    columns, rows = len(x["values"]), len(y["values"]) if y else 1
    left = SIDE if y else 0
    width = left + columns * (CELL + GAP) + GAP
    height = TOP + rows * (CELL + GAP) + GAP
    sheet = PILImage.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(sheet)
    bold, regular = font(LABEL_SIZE, BOLD_FILES), font(LABEL_SIZE)
    draw.text((GAP, GAP), fit_line(draw, sweep["text"], bold, width - 2 * GAP), font=bold, fill=INK)
    for column, value in enumerate(x["values"]):
        where = (left + GAP + column * (CELL + GAP), GAP + LABEL_SIZE + GAP)
        draw.text(
            where, fit_line(draw, label(x["axis"], value), regular, CELL), font=regular, fill=INK
        )
    for row, value in enumerate(y["values"] if y else []):
        where = (GAP, TOP + row * (CELL + GAP) + CELL // 2 - LABEL_SIZE // 2)
        text = fit_line(draw, label(y["axis"], value), regular, SIDE - 2 * GAP)
        draw.text(where, text, font=regular, fill=INK)
    for cell in sweep["cells"]:
        box = (left + GAP + cell["x"] * (CELL + GAP), TOP + (cell["y"] or 0) * (CELL + GAP))
        _paste(sheet, draw, box, first_images.get(cell["prompt"]), regular)
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()


def _paste(sheet, draw, box, png, regular):
    left, top = box
    if png is None:
        draw.rectangle((left, top, left + CELL - 1, top + CELL - 1), fill=EMPTY)
        draw.text((left + GAP, top + GAP), "no image", font=regular, fill=INK)
        return
    with PILImage.open(io.BytesIO(png)) as picture:
        # Fitted, proportions kept: a 64-pixel image is enlarged too, a grid is looked at whole.
        picture = ImageOps.contain(picture.convert("RGB"), (CELL, CELL))
        offset = ((CELL - picture.width) // 2, (CELL - picture.height) // 2)
        sheet.paste(picture, (left + offset[0], top + offset[1]))
