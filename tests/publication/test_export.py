import io
import json
import re
import zipfile
from html.parser import HTMLParser

import pytest
from PIL import Image as PILImage

from generation.pngmeta import a1111_parameters
from partyhub.jobs.runner import run_render
from partyhub.models import Image, Member

pytestmark = pytest.mark.django_db(transaction=True)

# AUTOMATIC1111's own pattern for the `Key: value` line (modules/infotext_utils.py).
RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def parse_a1111(text):
    """Read a `parameters` chunk the way A1111's parse_generation_parameters does."""
    *lines, last = text.strip().split("\n")
    if len(RE_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    fields = {}
    for key, value in RE_PARAM.findall(last):
        fields[key] = json.loads(value) if value.startswith('"') else value
    return "\n".join(prompt), "\n".join(negative), fields


class References(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.fixture
def finished_party(party, host, guest):
    host_member = Member.objects.get(session_key=host.session_key)
    guest_member = Member.objects.get(session_key=guest.session_key)
    small = {"width": 64, "height": 72, "steps": 2}
    root, first = party.submit_prompt(host_member, "loneliness", params={**small, "seed": 11})
    child, second = party.submit_prompt(
        guest_member,
        "two old people, looking away",
        root.pk,
        {**small, "seed": 99, "count": 2, "negative": "crowds", "sampler": "DPM++ 2M Karras"},
    )
    for render in (first, second):
        run_render(render.pk)
    picked = Image.objects.get(render=second, index=1)
    picked.vote(guest_member, 1)
    picked.vote(host_member, 1)
    picked.pick(host_member)
    return party


def open_export(client, party):
    response = client.get(f"/p/{party.code}/export.zip")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_the_manifest_lists_every_prompt_render_and_vote(finished_party, host):
    archive = open_export(host.client, finished_party)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["party"]["topic"] == "loneliness"
    prompts = manifest["prompts"]
    assert [(p["text"], p["parent"]) for p in prompts] == [
        ("loneliness", None),
        ("two old people, looking away", prompts[0]["id"]),
    ]
    assert manifest["prompt_tree"][0]["children"][0]["id"] == prompts[1]["id"]
    assert [r["status"] for r in manifest["renders"]] == ["done", "done"]
    assert {m["name"] for m in manifest["members"]} == {"Ann", "Bob"}
    picked = [i for i in manifest["images"] if i["picked"]]
    assert len(picked) == 1 and picked[0]["votes"] == 2
    seqs = [e["seq"] for e in manifest["events"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert "image.picked" in {e["type"] for e in manifest["events"]}


def test_every_png_carries_its_parameters_in_a1111_format(finished_party, host):
    archive = open_export(host.client, finished_party)
    manifest = json.loads(archive.read("manifest.json"))
    texts = {p["id"]: p for p in manifest["prompts"]}
    assert len(manifest["images"]) == 3
    for entry in manifest["images"]:
        with PILImage.open(io.BytesIO(archive.read(entry["file"]))) as png:
            assert png.format == "PNG"
            assert png.size == (64, 72)
            prompt, negative, fields = parse_a1111(png.text["parameters"])
            provenance = json.loads(png.text["partyhub"])
        source = texts[entry["prompt"]]
        assert prompt == source["text"]
        assert negative == source["params"]["negative"]
        assert fields["Seed"] == str(entry["seed"])
        assert fields["Steps"] == "2"
        assert fields["Size"] == "64x72"
        assert fields["Sampler"] == source["params"]["sampler"]
        assert fields["Model"] == "offline"
        assert provenance["prompt"] == source["id"]
        assert provenance["votes"] == entry["votes"]
        assert provenance["authors"][-1] in {"Ann", "Bob"}
    seeds = sorted(e["seed"] for e in manifest["images"])
    assert seeds == [11, 99, 100]


def test_values_with_separators_survive_the_a1111_round_trip():
    params = {
        "steps": 4,
        "sampler": "Euler a",
        "guidance": 7.5,
        "width": 512,
        "height": 512,
        "model": "my, model: v2",
        "negative": "blurry, dark",
    }
    text = a1111_parameters("a cat, sitting\non a mat", params, 4294967295)
    prompt, negative, fields = parse_a1111(text)
    assert prompt == "a cat, sitting\non a mat"
    assert negative == "blurry, dark"
    assert fields["Model"] == "my, model: v2"
    assert fields["Seed"] == "4294967295"
    assert fields["CFG scale"] == "7.5"


def test_the_gallery_references_only_files_inside_the_zip(finished_party, host):
    archive = open_export(host.client, finished_party)
    names = set(archive.namelist())
    assert {"manifest.json", "index.html", "post.md"} <= names
    parser = References()
    parser.feed(archive.read("index.html").decode())
    assert parser.found, "the gallery shows the images"
    for reference in parser.found:
        assert reference in names, reference
    assert all(not name.startswith(("/", "..")) for name in names)


def test_the_post_tells_the_story_of_the_picks(finished_party, host):
    post = open_export(host.client, finished_party).read("post.md").decode()
    assert post.startswith("# loneliness")
    assert "two old people, looking away" in post
    picked = Image.objects.get(picked_at__isnull=False)
    assert f"images/r{picked.render_id}-{picked.index}.png" in post
