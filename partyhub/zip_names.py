"""The names of what lies inside the export ZIP, and of the download itself: made by one function
(`entry_name`), so no party's title, topic, names or prompts can make a name that climbs out of
the folder the ZIP is unpacked into."""

import re
import unicodedata

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_SEGMENT = 100


def entry_name(*segments):
    """The one way a name inside the export ZIP (or the download's filename) is made.

    Each segment becomes a plain ASCII file name: accents are dropped, anything but letters,
    digits, `.`, `_` and `-` becomes `-` (slashes, backslashes, colons, NUL and other control
    characters included), leading and trailing dots and dashes go (so no `..` or hidden names),
    and it is cut to 100 characters; an empty result is `_`. The segments are joined with `/`.
    Whatever a party's title, topic, names or prompts say, a name can neither start at the root
    nor climb out of the folder it is unpacked into.
    """
    if not segments:
        raise ValueError("entry_name needs at least one segment")
    cleaned = []
    for segment in segments:
        text = unicodedata.normalize("NFKD", str(segment)).encode("ascii", "ignore").decode()
        text = _UNSAFE.sub("-", text).strip(".-")[:MAX_SEGMENT].strip(".-")
        cleaned.append(text or "_")
    return "/".join(cleaned)


def download_name(party):
    """The ZIP's filename in Content-Disposition."""
    return entry_name(f"partyhub-{party.code}.zip")


def image_path(image):
    return entry_name("images", f"r{image.render_id}-{image.index}.png")


def animation_path(render):
    """Where a walk's animated WebP lies inside the ZIP."""
    return entry_name("images", f"r{render.pk}-walk.webp")
