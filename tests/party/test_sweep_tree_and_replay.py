"""A sweep in the prompt tree and in the replay: one group, one entry for the whole grid, not a
loose prompt per cell; each cell still its own node, named by its values."""

import re

import pytest

from partyhub import actions
from partyhub.jobs.runner import run_render
from partyhub.models import Render, Sweep
from partyhub.timeline import timeline
from partyhub.tree import party_tree_svg, tree_svg

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"width": 64, "height": 64, "steps": 1}
ARTISTS = {"axis": "artist", "values": ["Munch", "Hokusai", "Kahlo"]}
SEEDS = {"axis": "seed", "values": [1, 2]}
LABELS = [f"{artist} · seed {seed}" for seed in (1, 2) for artist in ARTISTS["values"]]


def sweep(member, **fields):
    message = {"type": "sweep.submit", "text": "a red star", "x": ARTISTS, "y": SEEDS}
    actions.handle(member.pk, {**message, "params": SMALL, **fields})
    return Sweep.objects.latest("pk")


def rows(svg):
    """(what, id, indent) of every row of a drawn tree, top to bottom."""
    found = re.findall(r'data-(prompt|sweep)="(\d+)" transform="translate\((\d+),\d+\)"', svg)
    return [(what, int(pk), int(x)) for what, pk, x in found]


def test_the_tree_draws_a_sweep_as_one_group_with_its_cells_under_it(party, pm, member):
    root, _ = party.submit_prompt(pm, "stars", params=SMALL)
    made = sweep(pm, parent=root.pk)
    cells = list(made.cells.order_by("pk"))
    refined, _ = party.submit_prompt(
        member, "a red star, by Hokusai, at night", parent_id=cells[1].pk, params=SMALL
    )
    after, _ = party.submit_prompt(pm, "a moon", params=SMALL)

    svg = party_tree_svg(party)
    # The group sits under the prompt the sweep refined, its cells under it, a cell's
    # refinement under that cell; then the next prompt.
    assert rows(svg) == [
        ("prompt", root.pk, 0),
        ("sweep", made.pk, 18),
        ("prompt", cells[0].pk, 36),
        ("prompt", cells[1].pk, 36),
        ("prompt", refined.pk, 54),
        *[("prompt", cell.pk, 36) for cell in cells[2:]],
        ("prompt", after.pk, 0),
    ]
    assert svg.count('class="pt-node pt-sweep"') == 1
    group = re.search(r'<g class="pt-node pt-sweep".*?</g>', svg).group()
    assert 'class="pt-sweep-label"' in group and "Sweep · artist × seed</text>" in group
    # Who swept, how many cells, and what a folded group hides; each cell's values.
    metas = re.findall(r'<text class="pt-meta"[^>]*>([^<]*)</text>', svg)
    assert metas == ["Ann", "Ann · 6 cells · 1 refinement", *LABELS[:2], "Bob", *LABELS[2:], "Ann"]
    # A cell's words against its group's: what its value added.
    first_cell = re.search(rf'data-prompt="{cells[0].pk}".*?</g>', svg).group()
    assert re.findall(r'<tspan class="pt-added">([^<]*)</tspan>', first_cell) == ["by", "Munch"]
    # The lines join rows by their places, which the room folds them by (party-panels.js).
    assert re.findall(r'data-row="(\d+)"', svg) == [str(row) for row in range(10)]
    edges = [tuple(map(int, e)) for e in re.findall(r'data-from="(\d+)" data-to="(\d+)"', svg)]
    assert edges == [(0, 1), (1, 2), (1, 3), (3, 4), (1, 5), (1, 6), (1, 7), (1, 8)]


def test_the_room_fetches_the_tree_with_the_sweep_grouped(party, host, pm):
    made = sweep(pm)
    svg = host.client.get(f"/api/parties/{party.code}/tree.svg").content.decode()
    assert rows(svg)[0] == ("sweep", made.pk, 0)
    assert len(rows(svg)) == 7


def test_the_export_s_page_draws_the_sweep_grouped(party, host, pm):
    import io
    import zipfile

    made = sweep(pm)
    response = host.client.get(f"/p/{party.code}/export.zip")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    page = archive.read("index.html").decode()
    assert rows(page)[0] == ("sweep", made.pk, 0)
    assert len(rows(page)) == 7


def test_without_its_sweeps_the_tree_draws_the_cells_as_prompts(party, pm):
    # A caller that passes no sweeps (an export's manifest before them) draws what it knew.
    made = sweep(pm)
    svg = tree_svg([p.as_dict() for p in party.prompts.order_by("pk")])
    assert rows(svg) == [("prompt", cell.pk, 0) for cell in made.cells.order_by("pk")]


def test_the_replay_tells_a_sweep_as_one_entry_and_names_each_cell_s_render(party, pm):
    made = sweep(pm)
    renders = list(Render.objects.filter(prompt__sweep=made).order_by("pk"))
    for render in renders:
        run_render(render.pk)
    archive = [event.as_message() for event in party.events.order_by("seq")]
    names = {m.pk: m.name for m in party.members.all()}

    told = [
        (e["who"], e["text"], e.get("sweep"), len(e["images"]))
        for e in timeline(archive, names)
        if e["type"] != "member.joined"
    ]
    assert told == [
        ("Ann", "Ann swept “a red star” across 3 artists × 2 seeds", made.pk, 0),
        *[
            ("Ann", f"render {render.pk} finished: 1 image for the sweep’s {label}", made.pk, 1)
            for render, label in zip(renders, LABELS, strict=True)
        ],
    ]


def event(seq, kind, **payload):
    return {"type": kind, "seq": seq, "at": f"2026-11-23T20:00:{seq:02d}Z", **payload}


def cell_prompt(pk, text, cell, parent=None):
    return {"id": pk, "text": text, "parent": parent, "author": 1, "sweep": 4, "cell": cell}


SWEPT = {
    "id": 4,
    "author": 1,
    "text": "a chair",
    "x": {"axis": "style", "values": ["ukiyo-e", "film noir"]},
    "y": None,
    "cells": [{"x": 0, "y": None, "prompt": 7}, {"x": 1, "y": None, "prompt": 8}],
}
ARCHIVE = [
    event(1, "member.joined", member={"id": 1, "name": "Ann", "role": "prompt_master"}),
    event(2, "sweep.added", sweep=SWEPT),
    event(3, "prompt.added", prompt=cell_prompt(7, "a chair, ukiyo-e", [0, None])),
    event(4, "render.queued", render={"id": 20, "prompt": 7}),
    event(5, "prompt.added", prompt=cell_prompt(8, "a chair, film noir", [1, None])),
    event(6, "render.queued", render={"id": 21, "prompt": 8}),
    event(7, "render.done", render=21, images=[{"id": 50}]),
    # Rendered again later, and refined: news of their own.
    event(8, "render.queued", render={"id": 22, "prompt": 8}),
    event(9, "prompt.added", prompt={**cell_prompt(9, "a chair at dusk", None, 8), "sweep": None}),
    # Whatever became of a cell's render names the cell, as a finished one does.
    event(10, "render.failed", render=20, error={"code": "out_of_memory", "message": "Out."}),
    event(11, "render.cancelled", render=22, by=1),
    event(12, "render.queued", render={"id": 23, "prompt": 7}),
    event(13, "render.cancelled", render=23),
    event(14, "render.queued", render={"id": 24, "prompt": 8}),
    event(15, "render.filtered", render=24),
]


def test_a_sweep_s_cells_are_told_once_and_what_follows_them_as_ever():
    entries = timeline(ARCHIVE, {})
    assert [(e["seq"], e["text"], e.get("sweep")) for e in entries[1:]] == [
        (2, "Ann swept “a chair” across 2 styles", 4),
        (7, "render 21 finished: 1 image for the sweep’s film noir", 4),
        (8, "render 22 queued: “a chair, film noir”", None),
        (9, "Ann refined “a chair, film noir” into “a chair at dusk”", None),
        (10, "render 20 failed for the sweep’s ukiyo-e: Out.", 4),
        (11, "Ann cancelled render 22 for the sweep’s film noir", 4),
        (12, "render 23 queued: “a chair, ukiyo-e”", None),
        (13, "render 23 for the sweep’s ukiyo-e was cancelled", 4),
        (14, "render 24 queued: “a chair, film noir”", None),
        (15, "render 24 for the sweep’s film noir was held back by the safety checker", 4),
    ]


def test_a_malformed_sweep_gets_a_generic_line_and_its_cells_are_told_as_prompts():
    broken = [ARCHIVE[0], {**ARCHIVE[1], "sweep": {**SWEPT, "x": None}}, *ARCHIVE[2:4]]
    assert [e["text"] for e in timeline(broken, {})[1:]] == [
        "Sweep added",
        "Ann wrote “a chair, ukiyo-e”",
        "render 20 queued: “a chair, ukiyo-e”",
    ]
