"""Renders made with "Use" (a redraw, repaint, variation, or a walk from an image) sit in the
prompt tree under the prompt of the image they started from."""

import importlib
import io
import json
import re
import zipfile
from pathlib import Path

import jsonschema
import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from partyhub.export import build_zip
from partyhub.models import Image, Prompt, Upload
from partyhub.snapshot import snapshot
from partyhub.tree import party_tree_svg

pytestmark = pytest.mark.django_db

SMALL = {"width": 64, "height": 64, "steps": 2}


def rendered(party, author, text, **params):
    """A prompt with one stored image, as if its render had run (no model needed here)."""
    prompt, render = party.submit_prompt(author, text, params={**SMALL, **params})
    image = Image.objects.create(
        render=render,
        party=party,
        index=0,
        file=f"parties/{party.code}/r{render.pk}-0.png",
        seed=prompt.params["seed"],
        width=64,
        height=64,
    )
    return prompt, image


@pytest.fixture
def upload(party, pm):
    return Upload.objects.create(
        party=party, member=pm, file="u.png", source_format="PNG", width=64, height=64
    )


def test_a_prompt_made_from_an_image_has_that_image_s_prompt_as_its_source(
    party, pm, member, upload
):
    root, image = rendered(party, pm, "a red circle")
    modes = [
        {"mode": "img2img", "init_image": image.pk},
        {"mode": "inpaint", "init_image": image.pk, "mask": upload.pk},
        {"mode": "variation", "init_image": image.pk},
    ]
    made = [party.submit_prompt(member, "a blue star", params={**SMALL, **p})[0] for p in modes]
    assert [prompt.source_id for prompt in made] == [root.pk] * 3
    assert made[0].as_dict()["source"] == root.pk
    # From an upload, or from nothing: no source.
    from_upload, _ = party.submit_prompt(
        pm, "x", params={**SMALL, "mode": "img2img", "init_upload": upload.pk}
    )
    assert from_upload.source is None and root.source is None


def test_a_walk_from_an_image_s_prompt_and_seed_starts_there(party, pm):
    root, image = rendered(party, pm, "a red circle", seed=42)
    walk, _ = party.submit_prompt(
        pm, "a red circle", params={**SMALL, "mode": "walk", "seed": 42, "walk_to": "a star"}
    )
    assert walk.source_id == root.pk
    elsewhere, _ = party.submit_prompt(
        pm, "a red circle", params={**SMALL, "mode": "walk", "seed": 43, "walk_to": "a star"}
    )
    assert elsewhere.source is None


def test_the_snapshot_tree_nests_them_under_their_source(party, pm, member):
    root, image = rendered(party, pm, "a red circle")
    refinement, _ = party.submit_prompt(pm, "a red circle, outlined", parent_id=root.pk)
    redraw, _ = party.submit_prompt(
        member, "a blue circle", params={**SMALL, "mode": "img2img", "init_image": image.pk}
    )
    # A refinement of another prompt that starts from the image stays under what it refines.
    refined_redraw, _ = party.submit_prompt(
        member,
        "a blue circle, outlined",
        parent_id=redraw.pk,
        params={**SMALL, "mode": "img2img", "init_image": image.pk},
    )
    (tree,) = snapshot(party, pm)["prompts"]
    assert tree["id"] == root.pk
    assert [(c["id"], c["parent"], c["source"]) for c in tree["children"]] == [
        (refinement.pk, root.pk, None),
        (redraw.pk, None, root.pk),
    ]
    (grandchild,) = tree["children"][1]["children"]
    assert (grandchild["id"], grandchild["parent"]) == (refined_redraw.pk, redraw.pk)


def test_the_svg_tree_draws_them_under_their_source_and_says_how_they_were_made(party, pm):
    root, image = rendered(party, pm, "a red circle")
    redraw, _ = party.submit_prompt(
        pm, "a blue circle", params={**SMALL, "mode": "img2img", "init_image": image.pk}
    )
    plain, _ = party.submit_prompt(pm, "a green square")
    svg = party_tree_svg(party)
    nodes = re.findall(r'data-prompt="(\d+)" transform="translate\((\d+),', svg)
    # Depth first: the redraw indented under the circle, then the next root.
    assert nodes == [(str(root.pk), "0"), (str(redraw.pk), "18"), (str(plain.pk), "0")]
    # The words it changed against its source, and the mode in its line.
    assert re.findall(r'<tspan class="pt-added">([^<]*)</tspan>', svg) == ["blue"]
    assert "Ann · redrawn" in svg


def test_prompts_written_before_sources_existed_are_linked_by_the_migration(party, pm):
    root, image = rendered(party, pm, "a red circle", seed=5)
    redraw, _ = party.submit_prompt(
        pm, "a blue circle", params={**SMALL, "mode": "img2img", "init_image": image.pk}
    )
    walk, _ = party.submit_prompt(
        pm, "a red circle", params={**SMALL, "mode": "walk", "seed": 5, "walk_seed": 6}
    )
    Prompt.objects.update(source=None)
    migration = importlib.import_module("partyhub.migrations.0008_prompt_source_client_id")
    migration.link_sources(apps, None)
    assert dict(Prompt.objects.values_list("pk", "source")) == {
        root.pk: None,
        redraw.pk: root.pk,
        walk.pk: root.pk,
    }


def test_the_export_s_tree_follows_the_sources_too_and_its_schema_knows_them(party, pm):
    root, image = rendered(party, pm, "a red circle")
    buffer = io.BytesIO()
    PILImage.new("RGB", (64, 64)).save(buffer, format="PNG")
    image.file.name = default_storage.save(image.file.name, ContentFile(buffer.getvalue()))
    image.save(update_fields=["file"])
    redraw, _ = party.submit_prompt(
        pm,
        "a blue circle",
        params={**SMALL, "mode": "img2img", "init_image": image.pk},
        client_id="cid-1",
    )
    with zipfile.ZipFile(build_zip(party)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    (node,) = manifest["prompt_tree"]
    assert [child["id"] for child in node["children"]] == [redraw.pk]
    assert (manifest["prompts"][1]["source"], manifest["prompts"][1]["client_id"]) == (
        root.pk,
        "cid-1",
    )
    schema = json.loads(
        (Path(__file__).resolve().parents[2] / "docs" / "manifest.schema.json").read_text()
    )
    jsonschema.Draft202012Validator(schema).validate(manifest)
