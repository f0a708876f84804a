"""The one lineage walk and the one `partyhub` PNG chunk: the same over Prompt-like objects
walked by `.parent` (the render runner) and over a dict of prompts by id (the export)."""

import io
import json
from types import SimpleNamespace

from PIL import Image as PILImage

from generation import pngmeta
from partyhub.provenance import lineage, provenance


def prompts():
    root = SimpleNamespace(pk=1, parent=None, parent_id=None, author="Ada")
    child = SimpleNamespace(pk=4, parent=root, parent_id=1, author="Bo")
    grandchild = SimpleNamespace(pk=9, parent=child, parent_id=4, author="Ada")
    return root, child, grandchild


def test_it_walks_parents_root_first():
    root, child, grandchild = prompts()
    assert lineage(grandchild, parent_of=lambda p: p.parent) == [root, child, grandchild]
    assert lineage(root, parent_of=lambda p: p.parent) == [root]


def test_it_walks_a_dict_and_stops_where_the_lookup_ends():
    root, child, grandchild = prompts()
    by_id = {p.pk: p for p in (child, grandchild)}  # the root is not in the lookup
    assert lineage(grandchild, parent_of=lambda p: by_id.get(p.parent_id)) == [child, grandchild]


def test_it_builds_the_partyhub_chunk():
    *_, grandchild = prompts()
    chain = lineage(grandchild, parent_of=lambda p: p.parent)
    data = provenance(
        party_code="ABCD", render_id=7, lineage=chain, author_of=lambda p: p.author, votes=2
    )
    assert json.dumps(data) == json.dumps(
        {
            "party": "ABCD",
            "render": 7,
            "prompt": 9,
            "lineage": [1, 4, 9],
            "authors": ["Ada", "Bo", "Ada"],
            "votes": 2,
        }
    )
    fresh = provenance(party_code="ABCD", render_id=7, lineage=chain, author_of=lambda p: p.author)
    assert fresh["votes"] == 0


def test_it_is_what_the_png_carries():
    *_, grandchild = prompts()
    data = provenance(
        party_code="ABCD",
        render_id=7,
        lineage=lineage(grandchild, parent_of=lambda p: p.parent),
        author_of=lambda p: p.author,
    )
    png = pngmeta.png_bytes(PILImage.new("RGB", (8, 8)), "a cat", data)
    with PILImage.open(io.BytesIO(png)) as image:
        assert json.loads(image.text["partyhub"]) == data
