"""Sweeps: one prompt across styles, artists or parameters as a grid of cells, each a prompt of
its own with its own render; checked whole before anything is written."""

import pytest

from partyhub import actions
from partyhub.jobs.runner import run_render
from partyhub.models import Event, Image, Prompt, Render, Sweep
from partyhub.snapshot import snapshot

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"width": 64, "height": 64, "steps": 1}
STYLES = {"axis": "style", "values": ["ukiyo-e", "pop art", "film noir"]}


def sweep(member, **fields):
    message = {"type": "sweep.submit", "text": "a red circle", "x": STYLES, "params": SMALL}
    actions.handle(member.pk, {**message, **fields})
    return Sweep.objects.latest("pk")


def test_a_style_sweep_is_a_row_of_prompts_with_one_seed(party, pm):
    made = sweep(pm)
    cells = list(made.cells.order_by("cell_x"))
    assert [c.text for c in cells] == [
        "a red circle, ukiyo-e",
        "a red circle, pop art",
        "a red circle, film noir",
    ]
    assert len({c.params["seed"] for c in cells}) == 1  # a fair comparison
    assert [(c.cell_x, c.cell_y) for c in cells] == [(0, None), (1, None), (2, None)]
    assert Render.objects.filter(prompt__sweep=made).count() == 3
    types = [e.type for e in party.events.exclude(type="member.joined")]
    assert types[:1] == ["sweep.added"]
    assert types[1:] == ["prompt.added", "render.queued"] * 3
    added = Event.objects.get(type="sweep.added").payload["sweep"]
    assert added == made.as_dict()
    assert [c["prompt"] for c in added["cells"]] == [c.pk for c in cells]
    assert snapshot(party)["sweeps"] == [made.as_dict()]
    assert snapshot(party)["prompts"][0]["sweep"] == made.pk


def test_an_artist_by_seed_grid_and_its_images(party, pm):
    made = sweep(
        pm,
        x={"axis": "artist", "values": ["Munch", "Hokusai"]},
        y={"axis": "seed", "values": [1, 2]},
    )
    cells = list(made.cells.order_by("cell_y", "cell_x"))
    assert [(c.text, c.params["seed"], c.cell_x, c.cell_y) for c in cells] == [
        ("a red circle, by Munch", 1, 0, 0),
        ("a red circle, by Hokusai", 1, 1, 0),
        ("a red circle, by Munch", 2, 0, 1),
        ("a red circle, by Hokusai", 2, 1, 1),
    ]
    for render in Render.objects.filter(prompt__sweep=made):
        run_render(render.pk)
    assert Image.objects.filter(render__prompt__sweep=made).count() == 4


def test_a_parameter_sweep_keeps_the_words(party, pm):
    made = sweep(pm, x={"axis": "guidance", "values": [1, 4.5, 9]})
    assert {c.text for c in made.cells.all()} == {"a red circle"}
    assert sorted(c.params["guidance"] for c in made.cells.all()) == [1, 4.5, 9]


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"x": {"axis": "style", "values": ["one"]}}, "invalid_sweep"),
        ({"x": {"axis": "colour", "values": ["a", "b"]}}, "invalid_sweep"),
        ({"x": {"axis": "style", "values": ["a", "A"]}}, "invalid_sweep"),
        ({"x": {"axis": "style", "values": ["a", "x" * 61]}}, "invalid_sweep"),
        ({"x": {"axis": "style", "values": ["a", "b\nc"]}}, "invalid_sweep"),
        ({"x": {"axis": "seed", "values": [1, True]}}, "invalid_sweep"),
        ({"x": {"axis": "seed", "values": [1, -1]}}, "invalid_sweep"),
        ({"x": {"axis": "steps", "values": [1, 2.5]}}, "invalid_sweep"),
        ({"x": {"axis": "steps", "values": [1, 500]}}, "invalid_param"),
        ({"x": {"axis": "style", "values": ["a", "b"], "extra": 1}}, "invalid_sweep"),
        ({"x": ["a", "b"]}, "invalid_sweep"),
        ({"y": {"axis": "style", "values": ["c", "d"]}}, "invalid_sweep"),  # the same axis
        ({"y": {"axis": "seed", "values": [1, 2, 3, 4, 5, 6]}}, "sweep_too_large"),
        ({"params": {**SMALL, "mode": "walk"}}, "invalid_sweep"),
        ({"text": "a red circle " + "and a blue square " * 3}, "prompt_too_long"),
    ],
)
def test_a_bad_sweep_is_refused_whole(party, pm, refused, fields, code):
    seq = party.events.count()
    message = {"type": "sweep.submit", "text": "a red circle", "x": STYLES, "params": SMALL}
    assert refused(pm, {**message, **fields}) == code
    assert party.events.count() == seq and not Prompt.objects.exists()


def test_a_steered_party_sweeps_for_its_prompt_master_only(party, pm, member, refused):
    party.set_steered(pm, True)
    message = {"type": "sweep.submit", "text": "a red circle", "x": STYLES, "params": SMALL}
    assert refused(member, message) == "steered"
    sweep(pm)

    party.set_steered(pm, False)
    pm.mute(member, True)
    assert refused(member, message) == "muted"
    assert Sweep.objects.count() == 1


def test_a_repeated_client_id_makes_one_sweep(party, pm):
    first = sweep(pm, client_id="s-1")
    again = sweep(pm, client_id="s-1", x={"axis": "style", "values": ["a", "b"]})
    assert first == again and Sweep.objects.count() == 1 and Prompt.objects.count() == 3
    assert first.as_dict()["client_id"] == "s-1"


def test_a_sweep_counts_once_against_the_render_rate(party, member, settings, refused):
    settings.PARTYHUB_PARTY_RENDERS_PER_MINUTE = 2
    sweep(member)
    sweep(member)
    message = {"type": "sweep.submit", "text": "a red circle", "x": STYLES, "params": SMALL}
    assert refused(member, message) == "rate_limited"
    assert Sweep.objects.count() == 2


def test_the_export_holds_each_grid_as_one_labelled_picture_of_its_cells(party, pm, host):
    import io
    import json
    import zipfile
    from pathlib import Path

    import jsonschema
    from PIL import Image as Picture

    from partyhub import sweep_grid

    made = sweep(
        pm,
        x={"axis": "artist", "values": ["Munch", "Hokusai"]},
        y={"axis": "steps", "values": [1, 2]},
    )
    for render in Render.objects.filter(prompt__sweep=made):
        run_render(render.pk)
    response = host.client.get(f"/p/{party.code}/export.zip")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    manifest = json.loads(archive.read("manifest.json"))
    schema = Path(__file__).resolve().parents[2] / "docs" / "manifest.schema.json"
    jsonschema.validate(manifest, json.loads(schema.read_text()))
    (entry,) = manifest["sweeps"]
    assert entry == {**made.as_dict(), "file": f"images/sweep-{made.pk}.png"}
    assert {p["id"]: p["cell"] for p in manifest["prompts"]} == {
        c.pk: [c.cell_x, c.cell_y] for c in made.cells.all()
    }
    grid = Picture.open(io.BytesIO(archive.read(entry["file"]))).convert("RGB")
    step = sweep_grid.CELL + sweep_grid.GAP
    assert grid.size == (
        sweep_grid.SIDE + 2 * step + sweep_grid.GAP,
        sweep_grid.TOP + 2 * step + sweep_grid.GAP,
    )
    # Each cell holds its own render's image: its picture, scaled, where the grid says.
    for cell in made.cells.all():
        image = Image.objects.get(render__prompt=cell, index=0)
        own = (
            Picture.open(image.file).convert("RGB").resize((sweep_grid.CELL,) * 2, Picture.LANCZOS)
        )
        left = sweep_grid.SIDE + sweep_grid.GAP + cell.cell_x * step
        top = sweep_grid.TOP + cell.cell_y * step
        shown = grid.crop((left, top, left + sweep_grid.CELL, top + sweep_grid.CELL))
        others = [
            Picture.open(o.file).convert("RGB").resize((sweep_grid.CELL,) * 2, Picture.LANCZOS)
            for o in Image.objects.filter(render__prompt__sweep=made).exclude(pk=image.pk)
        ]
        assert difference(shown, own) < min(difference(shown, other) for other in others)


def difference(one, other):
    from PIL import ImageChops, ImageStat

    return sum(ImageStat.Stat(ImageChops.difference(one, other)).mean)


def test_every_axis_has_its_plural():
    """The replay and the room's composer (through sweep_rules) count an axis's values by it."""
    from partyhub.models.sweep import AXES, AXIS_PLURALS

    assert set(AXIS_PLURALS) == set(AXES)


def test_the_pages_carry_the_text_axes_the_grids_label_by(host, party):
    """sweeps.js says a palette value bare and a parameter with its name ("seed 7"), by the
    server's list of text axes: the room and the stage both carry it."""
    import json
    import re

    from partyhub.models.sweep import TEXT_AXES

    for page in (f"/p/{party.code}/", f"/p/{party.code}/stage/"):
        html = host.client.get(page).content.decode()
        found = re.search(r'<script id="sweep-rules" type="application/json">(.*?)</script>', html)
        assert found, page
        assert json.loads(found.group(1))["text_axes"] == list(TEXT_AXES)
