"""The export as a finished publication: the manifest against its JSON Schema, watermarked
images, the contact sheet, index.html and post.md telling the party, and entry names that stay
inside the ZIP whatever people wrote."""

import io
import json
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from partyhub import watermark
from partyhub.export import FORMAT, download_name, entry_name
from partyhub.jobs.runner import run_render
from partyhub.models import Image, Member, Party

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "manifest.schema.json").read_text()
)
SMALL = {"width": 64, "height": 64, "steps": 1}


def validate(manifest):
    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(manifest)


def open_export(person, party):
    response = person.client.get(f"/p/{party.code}/export.zip")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    return response, archive


@pytest.fixture
def story(party, pm, member, expert):
    """Ann (Prompt Master) starts at 256×256 (large enough for a watermark); Bob says "winter
    light", then refines Ann's prompt at 64×64; Eve (Art Expert) shortlists one image and picks
    Bob's second with a note."""
    root, first = party.submit_prompt(
        pm, "loneliness", params={**SMALL, "width": 256, "height": 256}
    )
    run_render(first.pk)
    party.add_association(member, "winter light")
    child, second = party.submit_prompt(
        member, "two old people, looking away", root.pk, {**SMALL, "count": 2}
    )
    run_render(second.pk)
    party.add_association(expert, "an empty bench")
    large = Image.objects.get(render=first)
    pick = Image.objects.get(render=second, index=1)
    pick.vote(member, 1)
    pick.vote(pm, 1)
    large.vote(expert, 1)
    large.shortlist(expert)
    pick.pick(expert, note="Two backs say more than two faces")
    return {"root": root, "child": child, "large": large, "pick": pick}


def test_the_manifest_validates_against_its_schema(party, host, story):
    _, archive = open_export(host, party)
    manifest = json.loads(archive.read("manifest.json"))
    validate(manifest)
    assert manifest["format"] == FORMAT == "partyhub-export/3"


def test_the_schema_is_strict(party, host, story):
    _, archive = open_export(host, party)
    manifest = json.loads(archive.read("manifest.json"))
    for break_it in (
        lambda m: m["images"][0].update(surprise=1),
        lambda m: m["party"].pop("published"),
        lambda m: m["images"][0].update(file="../../etc/passwd"),
        lambda m: m["images"][0].update(note="two\nlines"),
        lambda m: m["prompts"][0].update(status="maybe"),
        lambda m: m["prompt_tree"][0]["children"][0].update(extra=True),
        lambda m: m["credits"][0].pop("votes"),
    ):
        broken = json.loads(json.dumps(manifest))
        break_it(broken)
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)


def test_the_manifest_carries_notes_shortlist_status_and_credits(party, host, story, pm, member):
    _, archive = open_export(host, party)
    manifest = json.loads(archive.read("manifest.json"))
    images = {i["id"]: i for i in manifest["images"]}
    pick, large = images[story["pick"].pk], images[story["large"].pk]
    assert pick["picked"] and pick["note"] == "Two backs say more than two faces"
    assert pick["picked_at"] is not None and pick["votes"] == 2
    assert large["shortlisted"] and not large["picked"] and large["note"] == ""
    assert {p["status"] for p in manifest["prompts"]} == {"submitted"}
    expert = Member.objects.get(party=party, role=Member.Role.ART_EXPERT)
    credits = {c["name"]: c for c in manifest["credits"]}
    assert credits["Ann"]["prompts"] == [story["root"].pk]
    assert credits["Bob"]["prompts"] == [story["child"].pk]
    assert credits["Bob"]["votes"] == [story["pick"].pk]
    assert credits["Eve"]["votes"] == [story["large"].pk]
    assert credits["Eve"]["picks"] == [story["pick"].pk] and credits["Eve"]["member"] == expert.pk
    assert [len(credits[n]["associations"]) for n in ("Ann", "Bob", "Eve")] == [0, 1, 1]
    assert manifest["party"]["published"] is False
    assert manifest["contact_sheet"] == "contact-sheet.png"


def test_images_large_enough_carry_the_watermark_and_keep_their_text(party, host, story):
    _, archive = open_export(host, party)
    manifest = json.loads(archive.read("manifest.json"))
    flags = {i["id"]: i["watermarked"] for i in manifest["images"]}
    large = story["large"]
    assert flags.pop(large.pk) is True
    assert set(flags.values()) == {False}, "64×64 images are exported unmarked, not upscaled"

    with default_storage.open(large.file.name) as stored, PILImage.open(stored) as original:
        original.load()
    with PILImage.open(io.BytesIO(archive.read(f"images/r{large.render_id}-0.png"))) as exported:
        exported.load()
    assert exported.size == original.size == (256, 256)
    assert watermark.check(exported).status == watermark.FOUND
    assert watermark.check(original).status == watermark.ABSENT, "the stored file stays as it was"
    assert exported.text["parameters"] == original.text["parameters"]
    assert json.loads(exported.text["partyhub"])["votes"] == 1, "votes at export time"

    small = story["pick"]
    with PILImage.open(io.BytesIO(archive.read(f"images/r{small.render_id}-1.png"))) as exported:
        assert exported.size == (64, 64)
        assert watermark.check(exported).status == watermark.TOO_SMALL


def test_the_contact_sheet_is_a_white_300_dpi_grid_with_the_picks_framed(party, host, story):
    _, archive = open_export(host, party)
    with PILImage.open(io.BytesIO(archive.read("contact-sheet.png"))) as sheet:
        sheet.load()
        assert sheet.format == "PNG"
        assert sheet.width == 2480, "A4's width at 300 dpi"
        assert tuple(round(d) for d in sheet.info["dpi"]) == (300, 300)
        assert sheet.getpixel((5, 5)) == (255, 255, 255)
        colours = {colour for _, colour in sheet.getcolors(maxcolors=2**24)}
    from partyhub.contact_sheet import PICK

    assert PICK in colours, "the pick is framed"


def test_a_party_with_nothing_to_show_still_exports(party, host):
    _, archive = open_export(host, party)
    manifest = json.loads(archive.read("manifest.json"))
    validate(manifest)
    assert manifest["images"] == [] and manifest["prompts"] == []
    assert "Nothing was picked at this party." in archive.read("index.html").decode()
    with PILImage.open(io.BytesIO(archive.read("contact-sheet.png"))) as sheet:
        assert sheet.width == 2480


class Parsed(HTMLParser):
    def __init__(self, html):
        super().__init__()
        self.figures, self.references, self.scripts = [], [], {}
        self._script = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure" and "data-image" in attrs:
            self.figures.append(int(attrs["data-image"]))
        self.references += [attrs[k] for k in ("src", "href") if attrs.get(k)]
        if tag == "script" and attrs.get("id"):
            self._script = attrs["id"]

    def handle_data(self, data):
        if self._script:
            self.scripts[self._script] = data

    def handle_endtag(self, tag):
        self._script = None


def test_index_html_shows_the_picks_first_the_tree_the_timeline_and_credits(party, host, story):
    _, archive = open_export(host, party)
    html = archive.read("index.html").decode()
    page = Parsed(html)
    pick = story["pick"]
    assert page.figures[0] == pick.pk, "picks first"
    assert "Two backs say more than two faces" in html
    assert "picked by Eve, Art Expert" in html
    assert html.count('class="prompt-tree-svg"') == 1
    names = set(archive.namelist())
    for reference in page.references:
        assert reference in names, reference
    assert "replay.js" in page.references and "replay.js" in names
    assert b"PartyHubReplay" in archive.read("replay.js")
    replay = json.loads(page.scripts["replay-data"])
    assert [e["seq"] for e in replay["entries"]] == list(range(1, party.events.count() + 1))
    assert set(replay["images"].values()) == {n for n in names if n.endswith(".png")} - {
        "contact-sheet.png"
    }
    assert "Eve picked" in html, "the server-rendered timeline works without JavaScript"
    # Credits: who wrote which prompt, said which word, voted for which image.
    credits = html[html.index('id="pub-credits"') :]
    bob = credits[credits.index("Bob") : credits.index("Eve")]
    assert "two old people, looking away" in bob
    assert "winter light" in bob
    assert f"r{pick.render_id}-1" in bob


def test_the_post_tells_each_picks_lineage_with_who_wrote_what_and_the_words_said(
    party, host, story
):
    post = open_export(host, party)[1].read("post.md").decode()
    assert post.startswith("# loneliness\n")
    pick = story["pick"]
    lineage = post[post.index("### 1. two old people") :]
    assert f"![two old people, looking away](images/r{pick.render_id}-1.png)" in lineage
    assert "> Two backs say more than two faces" in lineage
    assert "> — Eve, Art Expert" in lineage
    started = lineage.index("Ann started with “loneliness”")
    said = lineage.index("“winter light” (Bob) came up")
    refined = lineage.index("Bob refined it to “two old people, looking away”")
    assert started < said < refined, "the words said between two steps come between them"
    assert "(dropping _loneliness_)" in lineage, "all words new: only the dropped ones listed"
    assert "an empty bench" not in lineage, "said after the pick's prompt was written"
    assert "- **Eve**: 0 prompts, 1 association, 1 vote, 1 pick" in post


# --- Names that try to escape the ZIP ---------------------------------------------------------

HOSTILE = [
    "../../x",
    "/etc/passwd",
    "..",
    ".",
    "",
    "a\x00b",
    "..\\..\\windows\\system32",
    "C:\\boot.ini",
    "images/../../../tmp/x.png",
    "\x00",
    " / ",
    ".hidden",
    "ñandú café.png",
    "x" * 300,
]


@pytest.mark.parametrize("name", HOSTILE)
def test_entry_names_stay_inside_the_zip(name):
    for built in (entry_name(name), entry_name("images", name), entry_name(name, name)):
        segments = built.split("/")
        assert built and not built.startswith("/")
        assert all(segments), built
        assert not any(s in (".", "..") or s.startswith(".") for s in segments), built
        assert "\x00" not in built and "\\" not in built and ":" not in built
        assert built.isascii() and built.isprintable()
        assert all(len(s) <= 100 for s in segments)


def test_entry_names_keep_plain_names_and_flatten_the_rest():
    assert entry_name("images", "r12-3.png") == "images/r12-3.png"
    assert entry_name("manifest.json") == "manifest.json"
    assert entry_name("../../x") == "x"
    assert entry_name("/etc/passwd") == "etc-passwd"
    assert entry_name("a\x00b") == "a-b"
    assert entry_name("..") == entry_name("") == entry_name("\x00") == "_"
    assert entry_name("images/../../../tmp/x.png") == "images-..-..-..-tmp-x.png"
    assert entry_name("ñandú café.png") == "nandu-cafe.png"
    with pytest.raises(ValueError):
        entry_name()


def test_a_hostile_party_exports_only_safe_names(tmp_path, outsider):
    from tests.conftest import Person

    # PostgreSQL stores no NUL in text, so NUL is tried on entry_name directly (above).
    host = Person("../../x")
    party, pm = Party.start(
        topic="/etc/passwd",
        title="../../../evil",
        session_key=host.session_key,
        host_name="..\\..\\boot.ini",
    )
    guest = party.join(outsider.session_key, "/root/.ssh/id_rsa")
    root, render = party.submit_prompt(pm, "../../../tmp/pwned.png", params=SMALL)
    run_render(render.pk)
    party.submit_prompt(guest, "C:\\Windows /etc/shadow", root.pk, SMALL)
    party.add_association(guest, "../../association")
    Image.objects.get(render=render).pick(pm, note="../../note")

    response, archive = open_export(host, party)
    assert response["Content-Disposition"] == f'attachment; filename="partyhub-{party.code}.zip"'
    image = Image.objects.get(render=render)
    assert set(archive.namelist()) == {
        "manifest.json",
        "index.html",
        "post.md",
        "replay.js",
        "contact-sheet.png",
        f"images/r{render.pk}-0.png",
    }
    archive.extractall(tmp_path / "out")
    written = {p.resolve() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert len(written) == 6
    assert all(p.is_relative_to((tmp_path / "out").resolve()) for p in written)
    # What people wrote is data: kept as it was inside the files, never a name.
    manifest = json.loads(archive.read("manifest.json"))
    validate(manifest)
    assert manifest["party"]["title"] == "../../../evil"
    assert {m["name"] for m in manifest["members"]} == {"..\\..\\boot.ini", "/root/.ssh/id_rsa"}
    assert manifest["images"][0]["file"] == f"images/r{image.render_id}-0.png"
    assert "../../../tmp/pwned" in archive.read("post.md").decode()


def test_the_download_name_is_built_by_the_same_function():
    class Hostile:
        code = "../../\x00x/y"

    assert download_name(Hostile()) == "partyhub-..-..-x-y.zip"
    assert "/" not in download_name(Hostile())
