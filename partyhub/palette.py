"""The palette: styles, techniques, artists, periods and modifiers people add to a prompt with a
click. The built-in entries are data (data/palette.json); a party's host adds more of its own."""

import functools
import json
from pathlib import Path

from core.errors import ApiError

KINDS = ("style", "technique", "artist", "period", "modifier")
MAX_ENTRY_LENGTH = 60
MAX_PARTY_ENTRIES = 200


@functools.cache
def builtin():
    """The built-in entries, [{"kind", "text"}] in the file's order; checked when first read."""
    data = json.loads((Path(__file__).parent / "data" / "palette.json").read_text())
    if set(data) != set(KINDS):
        raise ValueError(f"data/palette.json must have exactly the kinds {KINDS}")
    return tuple({"kind": kind, "text": text} for kind in KINDS for text in data[kind])


def palette(party):
    """Every entry a party's palette shows: built-in ones first, then the host's, per kind."""
    entries = [{**entry, "builtin": True} for entry in builtin()]
    entries += [{**entry, "builtin": False} for entry in party.palette]
    return sorted(entries, key=lambda entry: KINDS.index(entry["kind"]))


def clean_entry(party, kind, text):
    """A new entry for `party`'s palette, or ApiError; duplicates compare without case."""
    if kind not in KINDS:
        raise ApiError("invalid_kind", f"kind must be one of {', '.join(KINDS)}.")
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= MAX_ENTRY_LENGTH:
        raise ApiError("invalid_text", f"text must be 1 to {MAX_ENTRY_LENGTH} characters.")
    text = " ".join(text.split())
    if any(entry["text"].lower() == text.lower() for entry in palette(party)):
        raise ApiError("duplicate_entry", f"“{text}” is in the palette already.", 409)
    if len(party.palette) >= MAX_PARTY_ENTRIES:
        raise ApiError("palette_full", f"A party adds at most {MAX_PARTY_ENTRIES} entries.", 409)
    return {"kind": kind, "text": text}
