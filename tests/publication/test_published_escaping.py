"""What people write is published as their text, never as markup: in post.md (Markdown that blog
engines render with raw HTML allowed), in index.html and the public gallery /g/<code>/ (with
their Open Graph tags and the replay's embedded JSON), in the room, stage, replay and tree pages,
and on the contact sheet (drawn with Pillow)."""

import io
import json
import re
import unicodedata
import zipfile
from html.parser import HTMLParser

import pytest
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from PIL import Image as PILImage
from PIL import ImageDraw

from partyhub.contact_sheet import BOLD_FILES, CAPTION_SIZE, FONT_FILES, TITLE_SIZE, fit_line, font
from partyhub.export import publication
from partyhub.jobs.runner import run_render
from partyhub.models import Image, Member, Party, Prompt
from partyhub.templatetags.markdown import markdown_text

SMALL = {"width": 64, "height": 64, "steps": 1}

# A CommonMark renderer as blog engines set it up: raw HTML allowed, GitHub's tables and
# strikethrough on.
MD = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

# The one change markdown_text makes to what it shows: line breaks (CommonMark's \n and \r,
# str.splitlines' others) and control characters but the tab become spaces.
BREAKS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def shown(text):
    return BREAKS.sub(" ", text)


# Right-to-left letters and Arabic digits, and the direction controls, by bidirectional class.
RIGHT_TO_LEFT = {"R", "AL", "AN", "LRE", "LRO", "RLE", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
FSI, PDI = "\u2068", "\u2069"


def closed_by_its_last_character(text):
    """Whether the isolate `text` starts with ends at its last character and not before: an
    isolate end (PDI) closes the nearest open isolate start (UAX #9, BD9), and everything opened
    inside (overrides, embeddings) with it (X6a)."""
    depth = 0
    for n, char in enumerate(text):
        if char in "\u2066\u2067\u2068":
            depth += 1
        elif char == PDI and depth:
            depth -= 1
            if depth == 0:
                return n == len(text) - 1
    return False


def in_its_own_isolate(rendered, text):
    """`rendered` is what markdown_text shows of `text`: the text as it is when it holds nothing
    right to left; else the text after FSIs and before PDIs, all one isolate, so that neither an
    override left open in it nor its direction turns the rest of the line around."""
    if not any(unicodedata.bidirectional(char) in RIGHT_TO_LEFT for char in text):
        return rendered == text
    added = len(rendered) - len(text)
    return closed_by_its_last_character(rendered) and any(
        rendered == FSI * n + text + PDI * (added - n) for n in range(1, added)
    )


class Rendered(HTMLParser):
    """Elements (tag and attributes but alt) and the text a reader sees, alt text included."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.elements, self.chunks = [], []
        self.feed(html)
        self.close()
        self.text = "".join(self.chunks)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.chunks.append(attrs.pop("alt", None) or "")
        self.elements.append((tag, sorted(attrs.items())))

    def handle_data(self, data):
        self.chunks.append(data)

    def tags(self):
        return [tag for tag, _ in self.elements]


# --- markdown_text, for any text --------------------------------------------------------------

# Surrogates and NUL are refused at the door, so never reach a page.
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
MARKDOWNISH = st.text(
    st.sampled_from(
        list(
            "\\`*_[]{}()#|~&<>!-+=.:;\"' \t\n\r\x0b\x1c\u2028\xa0\u3000019aé\u0301"
            "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u05d0\u0628\u0663"
        )
    )
)
TEXTS = st.one_of(ANY_TEXT, MARKDOWNISH)

# PartyHub's own Markdown around what people wrote, as export_post.md writes it; WORD marks
# where their text goes. Empty text cannot reach here: names, prompts, words and notes are
# refused at the door when they are blank.
WORD = "Zq"
CONTEXTS = "\n\n".join(
    [
        "# Zq",
        "_A neurogenerative party on **Zq**, 4 December 2025, with 2 people: Zq (Prompt Master)._",
        "It began with “Zq”, written by Zq.",
        "### 1. Zq\n\n![Zq](images/r1-0.png)",
        "> Zq\n>\n> — Zq, Art Expert",
        "“Zq” (Zq) came up first.",
        "Zq started with “Zq”.",
        "Zq refined it to “Zq” (adding _Zq_, _Zq_; dropping _Zq_).",
        "1. “Zq” (Zq, refining “Zq”), 1 image\n2. “x” (y), 0 images",
        "- **Zq**: 1 prompt, 0 associations, 0 votes",
    ]
)
PLAIN = Rendered(MD.render(CONTEXTS))


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_markdown_text_renders_inline_as_exactly_the_text(text):
    escaped = markdown_text(text)
    html = MD.renderInline(escaped)
    rendered = Rendered(html)
    assert rendered.elements == [], html
    assert in_its_own_isolate(rendered.text, shown(text)), html
    [inline] = MD.parseInline(escaped)
    assert {child.type for child in inline.children} <= {"text"}


@settings(max_examples=300, deadline=None)
@given(TEXTS.filter(lambda text: text != ""))
def test_markdown_text_keeps_post_md_s_own_markup_and_makes_none(text):
    document = CONTEXTS.replace(WORD, markdown_text(text))
    rendered = Rendered(MD.render(document))
    assert rendered.elements == PLAIN.elements, document
    alone = Rendered(MD.renderInline(markdown_text(text))).text
    assert in_its_own_isolate(alone, shown(text))
    assert rendered.text == PLAIN.text.replace(WORD, alone)


@pytest.mark.parametrize(
    "text, escaped",
    [
        ("two old people, looking away", "two old people, looking away"),
        ("<b>&amp;</b>", "&lt;b&gt;&amp;amp;&lt;/b&gt;"),
        ("# heading", "\\# heading"),
        ("1. first", "1\\. first"),
        ("- item", "\\- item"),
        ("a\nb\r\nc", "a b  c"),
        ("  four  ", "&#32;&#32;four&#32;&#32;"),
        ("{{ site.secret }}", "\\{\\{ site.secret \\}\\}"),
        ("back\\", "back\\\\"),
        ("\u202eevil", "\u2068\u202eevil\u2069"),  # the override ends where the text does
        ("\u2069\u202eevil", "\u2068\u2068\u2069\u202eevil\u2069"),  # and a stray end cannot end it
        ("\u2067x", "\u2068\u2067x\u2069\u2069"),
        ("\u05e9\u05dc\u05d5\u05dd", "\u2068\u05e9\u05dc\u05d5\u05dd\u2069"),  # a Hebrew word
    ],
)
def test_markdown_text_escapes_only_what_markdown_reads(text, escaped):
    assert markdown_text(text) == escaped


# --- A party where everyone writes markup -----------------------------------------------------

TOPIC = "<script>alert('topic')</script> *bold* # x"
TITLE = '"><img src=x onerror=alert(1)> &amp; \u202eevil\u202c\r# not a heading\x1c|t|'
NAMES = {
    "host": "<img src=x onerror=alert(2)>",
    "guest": "# Bob\n--- e\u0301\u0301\u0301",
    "outsider": "[Eve](javascript:alert(3)) _x_ \u202eright to left\u202c \\",
}
# The offline model reads 22 tokens: the rendered prompts are short.
ROOT = "`c` ![i](h:x) |t| 1."
CHILD = "**loud** <b>b</b> &amp; \\"
NEGATIVE = "</script><script>alert(4)"
WALK_TO = "<svg onload=alert(5)>"
LONG = "*_" * 490 + "<i>long</i>"
ASSOCIATIONS = ["<img src=x onerror=alert(6)>", "1. list\n- item\n\n    code", "~~" * 50]
PALETTE = "<svg/onload=alert(7)> [x](javascript:alert(8))"
NOTE = "</blockquote># heading\r<script>alert(9)</script> ![n](http://x/n.png)"
PEOPLE_WROTE = [TOPIC, TITLE, *NAMES.values(), ROOT, CHILD, LONG, *ASSOCIATIONS, NOTE]
# Raw markup that must never reach a page as markup.
LIVE = ["<script>alert", "<img src=x", "<svg onload", "<svg/onload", "<b>b", "<i>long"]


@pytest.fixture
def hostile(db, host, guest, outsider):
    party, pm = Party.start(
        topic=TOPIC, title=TITLE, session_key=host.session_key, host_name=NAMES["host"]
    )
    bob = party.join(guest.session_key, NAMES["guest"])
    eve = party.join(outsider.session_key, NAMES["outsider"], role=Member.Role.ART_EXPERT)
    party.add_association(bob, ASSOCIATIONS[0])
    root, first = party.submit_prompt(pm, ROOT, params={**SMALL, "negative": NEGATIVE})
    party.add_association(eve, ASSOCIATIONS[1])
    party.add_to_palette(pm, "style", PALETTE)
    child, second = party.submit_prompt(bob, CHILD, root.pk, SMALL)
    party.add_association(pm, ASSOCIATIONS[2])
    # A proposal of 1000 characters, as a model reading more tokens than the offline one takes.
    proposal = Prompt.objects.create(
        party=party, parent=child, author=eve, text=LONG, status=Prompt.Status.PROPOSED
    )
    party.record("prompt.proposed", prompt=proposal.as_dict())
    walk = {**SMALL, "mode": "walk", "walk_to": WALK_TO, "frames": 2}
    _, third = party.submit_prompt(pm, ROOT, params=walk)
    for render in (first, second, third):
        run_render(render.pk)
    pick = Image.objects.get(render=second)
    pick.vote(pm, 1)
    pick.pick(eve, note=NOTE)
    Image.objects.get(render=first).shortlist(eve)
    return party


def export(host, party):
    response = host.client.get(f"/p/{party.code}/export.zip")
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_post_md_shows_what_people_wrote_as_text(hostile, host):
    archive = export(host, hostile)
    post = archive.read("post.md").decode()
    html = MD.render(post)
    rendered = Rendered(html)
    for text in PEOPLE_WROTE:
        assert shown(text) in rendered.text, text
    for raw in LIVE:
        assert raw not in html

    # Every element is one export_post.md writes itself.
    page = publication(json.loads(archive.read("manifest.json")))
    [story] = page["stories"]
    tags = rendered.tags()
    assert set(tags) <= {"h1", "h2", "h3", "p", "em", "strong", "img", "blockquote", "ol", "ul"} | {
        "li",
        "code",
    }
    assert tags.count("h1") == 1 and tags.count("h2") == 3 and tags.count("h3") == 1
    images = [dict(attrs) for tag, attrs in rendered.elements if tag == "img"]
    assert images == [{"src": story["image"]["file"]}]
    assert story["image"]["file"] in archive.namelist()
    assert tags.count("blockquote") == 1, "the note is one blockquote"
    assert tags.count("code") == 1, "`index.html` in the last line"
    assert tags.count("strong") == 1 + len(page["credits"]), "the topic and each name in credits"
    words = sum(len(step["added"]) + len(step["removed"]) for step in story["steps"][1:])
    assert tags.count("em") == 2 + words, "the first and last lines, each word added or dropped"
    assert tags.count("li") == len(page["steps"]) + len(page["credits"])


class Page(HTMLParser):
    """A served or exported page: its elements with attributes, meta tags, text and scripts."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.elements, self.meta, self.chunks, self.scripts = [], {}, [], {}
        self._script = None
        self.feed(html)
        self.close()
        self.text = "".join(self.chunks)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        if tag == "meta" and "content" in attrs:
            self.meta[attrs.get("property") or attrs.get("name")] = attrs["content"]
        if tag == "script":
            self._script = attrs.get("id") or attrs.get("src")
            self.scripts[self._script] = ""

    def handle_data(self, data):
        if self._script:
            self.scripts[self._script] += data
        else:
            self.chunks.append(data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None


def assert_no_markup_from_people(html, scripts):
    """No tag or handler that people's text made: only the page's own scripts, no on* handler,
    no javascript: link, and none of the raw markup people wrote."""
    page = Page(html)
    for raw in LIVE:
        assert raw not in html
    assert [tag for tag, _ in page.elements if tag == "script"] == ["script"] * len(scripts)
    assert set(page.scripts) == set(scripts)
    for tag, attrs in page.elements:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        links = [attrs.get(name) or "" for name in ("href", "src", "action", "formaction")]
        assert not any(link.strip().lower().startswith("javascript:") for link in links), attrs
    return page


def test_index_html_shows_what_people_wrote_as_text(hostile, host):
    archive = export(host, hostile)
    page = assert_no_markup_from_people(
        archive.read("index.html").decode(), {"replay-data", "replay.js"}
    )
    for text in [TOPIC, *NAMES.values(), ROOT, CHILD, LONG, *ASSOCIATIONS, NOTE]:
        assert text in page.text or " ".join(text.split()) in page.text, text
    replay = json.loads(page.scripts["replay-data"])
    assert any(PALETTE in entry["text"] for entry in replay["entries"])


def test_the_gallery_and_its_open_graph_tags_show_what_people_wrote_as_text(hostile, host):
    assert (
        host.post_json(f"/api/parties/{hostile.code}/publish", {"published": True}).status_code
        == 200
    )
    response = Client().get(f"/g/{hostile.code}/")
    assert response.status_code == 200
    page = assert_no_markup_from_people(
        response.content.decode(),
        {"replay-data", "/static/partyhub/replay.js", "/static/partyhub/lengths.js"},
    )
    assert page.meta["og:title"] == page.meta["twitter:title"] == TITLE
    assert page.meta["og:image:alt"] == " ".join(CHILD.split()), "the pick's prompt"
    assert TOPIC in page.meta["og:description"] and NOTE in page.meta["og:description"]
    for text in [TOPIC, *NAMES.values(), ROOT, CHILD, *ASSOCIATIONS, NOTE]:
        assert text in page.text or " ".join(text.split()) in page.text, text


def test_the_room_stage_replay_and_tree_show_what_people_wrote_as_text(hostile, host):
    for path in (f"/p/{hostile.code}/", f"/p/{hostile.code}/stage/", f"/p/{hostile.code}/replay/"):
        response = host.client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        for raw in LIVE:
            assert raw not in html, path
        page = Page(html)
        for tag, attrs in page.elements:
            assert not any(name.startswith("on") for name in attrs), (path, tag, attrs)
        assert TOPIC in page.text, path
    svg = host.client.get(f"/api/parties/{hostile.code}/tree.svg").content.decode()
    for raw in LIVE:
        assert raw not in svg
    assert "&lt;b&gt;b&lt;/b&gt;" in svg


def test_the_contact_sheet_draws_any_text(hostile, host):
    archive = export(host, hostile)
    with PILImage.open(io.BytesIO(archive.read("contact-sheet.png"))) as sheet:
        sheet.load()
        assert sheet.width == 2480


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=300))
def test_any_caption_draws_on_one_line(text):
    """Pillow's raqm layout raises on paragraph separators (\\r, \\x1c, U+2029, ...) and
    textlength on newlines: every text the sheet draws goes through fit_line first."""
    draw = ImageDraw.Draw(PILImage.new("RGB", (1, 1)))
    for face in (font(CAPTION_SIZE, FONT_FILES), font(TITLE_SIZE, BOLD_FILES)):
        line = fit_line(draw, text, face, 400)
        assert "\n" not in line and draw.textlength(line, font=face) <= 400
        draw.text((0, 0), line, font=face)
