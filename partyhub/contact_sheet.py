"""A contact sheet for print: every image of the party in a grid, picks marked, a caption under
each (its name in the ZIP, the prompt, its author, its votes). White paper, black ink, 300 dpi:
five columns fill the width of an A4 or Letter page, and the sheet grows as long as it needs.
"""

import io
from datetime import datetime

from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

DPI = 300
COLUMNS = 5
PAGE_WIDTH = 2480  # A4 at 300 dpi (210 mm)
MARGIN = 120  # 1 cm
GUTTER = 48
CELL = (PAGE_WIDTH - 2 * MARGIN - (COLUMNS - 1) * GUTTER) // COLUMNS
CAPTION_SIZE = 30  # px at 300 dpi: about 7 pt
TITLE_SIZE = 64
INK, GREY, RULE, PICK = (20, 20, 20), (110, 110, 110), (200, 200, 200), (200, 30, 90)

# DejaVu covers most scripts people write prompts in; Pillow's own font (Latin) if it is missing.
FONT_FILES = ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
BOLD_FILES = ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def font(size, files=FONT_FILES):
    """DejaVu at `size` pixels (`files`: BOLD_FILES for bold); Pillow's own where it is missing."""
    for name in files:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def contact_sheet(page, pngs):
    """The sheet as PNG bytes. page: the export's `publication()` context; pngs: the bytes of
    each of page["images"], in the same order."""
    regular = font(CAPTION_SIZE, FONT_FILES)
    bold = font(CAPTION_SIZE, BOLD_FILES)
    title_font = font(TITLE_SIZE, BOLD_FILES)
    images = page["images"]
    line = CAPTION_SIZE + 8
    caption_height = 3 * line + 16
    rows = max(1, -(-len(images) // COLUMNS))
    header = MARGIN + TITLE_SIZE + 2 * line + 40
    height = header + rows * (CELL + caption_height + GUTTER) + MARGIN
    sheet = PILImage.new("RGB", (PAGE_WIDTH, height), "white")
    draw = ImageDraw.Draw(sheet)

    party = page["party"]
    title = fit_line(draw, party["title"] or party["topic"], title_font, PAGE_WIDTH - 2 * MARGIN)
    draw.text((MARGIN, MARGIN), title, font=title_font, fill=INK)
    created = datetime.fromisoformat(party["created_at"]).strftime("%Y-%m-%d")
    picks = len(page["picks"])
    subtitle = (
        f"Topic: {party['topic']} · party {party['code']} · {created} · "
        f"{len(page['members'])} people · {len(images)} images · "
        f"{picks} pick{'' if picks == 1 else 's'} (framed)"
    )
    draw.text(
        (MARGIN, MARGIN + TITLE_SIZE + 20),
        fit_line(draw, subtitle, regular, PAGE_WIDTH - 2 * MARGIN),
        font=regular,
        fill=GREY,
    )
    if not images:
        draw.text((MARGIN, header), "No images.", font=regular, fill=GREY)

    for number, (image, data) in enumerate(zip(images, pngs, strict=True)):
        row, column = divmod(number, COLUMNS)
        x = MARGIN + column * (CELL + GUTTER)
        y = header + row * (CELL + caption_height + GUTTER)
        with PILImage.open(io.BytesIO(data)) as picture:
            thumb = picture.convert("RGB")
            thumb.thumbnail((CELL, CELL), PILImage.Resampling.LANCZOS)
            if max(thumb.size) < CELL:  # small renders (the offline model's 128 px) fill the cell
                scale = CELL / max(thumb.size)
                size = (round(thumb.width * scale), round(thumb.height * scale))
                thumb = thumb.resize(size, PILImage.Resampling.LANCZOS)
        left = x + (CELL - thumb.width) // 2
        top = y + (CELL - thumb.height) // 2
        sheet.paste(thumb, (left, top))
        if image["picked"]:
            draw.rectangle(
                (left - 12, top - 12, left + thumb.width + 11, top + thumb.height + 11),
                outline=PICK,
                width=8,
            )
        else:
            draw.rectangle(
                (left - 1, top - 1, left + thumb.width, top + thumb.height), outline=RULE, width=1
            )
        text_y = y + CELL + 18
        label = f"{number + 1}. {image['name']}" + ("  ★ PICK" if image["picked"] else "")
        label = fit_line(draw, label + f"  · seed {image['seed']}", bold, CELL)
        draw.text((x, text_y), label, font=bold, fill=PICK if image["picked"] else INK)
        draw.text(
            (x, text_y + line), fit_line(draw, image["text"], regular, CELL), font=regular, fill=INK
        )
        votes = f"{image['votes']} vote{'' if image['votes'] == 1 else 's'}"
        credit = fit_line(draw, f"{image['author']} · {votes}", regular, CELL)
        draw.text((x, text_y + 2 * line), credit, font=regular, fill=GREY)

    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", dpi=(DPI, DPI), optimize=False)
    return buffer.getvalue()


def fit_line(draw, text, font, width):
    """`text` on one line, cut with an ellipsis where it would pass `width` pixels."""
    # Every caption and the title come through here. Splitting on whitespace also drops the
    # paragraph separators (CR, U+001C to U+001E, NEL, U+2029) on which Pillow's raqm layout
    # raises, and newlines, which would draw a second line over the next caption.
    text = " ".join(str(text).split())
    if draw.textlength(text, font=font) <= width:
        return text
    low, high = 0, len(text)  # the longest prefix that fits, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        if draw.textlength(text[:middle] + "…", font=font) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…"
