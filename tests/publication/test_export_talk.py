"""The party talks, published: the export's manifest (format 3) holds the conversation, post.md,
index.html and the public gallery quote the discussion around each pick credited to its
authors, and a hidden message is nowhere in what is published."""

import io
import json
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from django.test import Client
from markdown_it import MarkdownIt

from partyhub import actions
from partyhub.discussion import CHAT_LINES
from partyhub.export import FORMAT, publication
from partyhub.jobs.runner import run_render
from partyhub.models import Image, Member, Message

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "manifest.schema.json").read_text()
)
SMALL = {"width": 64, "height": 64, "steps": 1}
# A CommonMark renderer as blog engines set it up: raw HTML allowed.
MD = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

QUESTION = "What does loneliness look like?"
HIDDEN_CHAT = "zq-hidden-chat-line"
HIDDEN_COMMENT = "zq-hidden-comment"
# Markup, a link, a line break, right-to-left override and a long run: all stay text.
HOSTILE = (
    "</q><script>alert(1)</script> [x](javascript:alert(2))\n# not a heading "
    "\u202eevil\u202c " + "w" * 300
)
# Raw markup that must never reach a page as markup (the link stays text: no <a> is made).
LIVE = ["<script>alert", "</q><script>"]
DURING = [f"line {n}" for n in range(1, 11)]  # said while the pick was rendering


def say(member, text, **about):
    actions.handle(member.pk, {"type": "chat.send", "text": text, **about})
    return Message.objects.latest("pk")


def comment(member, text, **about):
    actions.handle(member.pk, {"type": "comment.add", "text": text, **about})
    return Message.objects.latest("pk")


def react(member, reaction, on=True, **about):
    actions.handle(member.pk, {"type": "reaction.set", "reaction": reaction, "on": on, **about})


def hide(member, message):
    actions.handle(member.pk, {"type": "message.hide", "message": message.pk})


@pytest.fixture
def facilitator(party):
    return party.join("facilitator-session", "Cy", role=Member.Role.FACILITATOR)


@pytest.fixture
def talk(settings, party, pm, member, expert, facilitator):
    """Ann (Prompt Master) pins a question and starts; Bob says something while it renders.
    Bob refines it, and ten lines are said while that renders (and one of Eve's, hidden); Eve
    picks one of its images. Then Bob comments on the pick (and once in markup), Ann on its
    prompt and in the chat about it, Eve once more (hidden); reactions come and one goes."""
    settings.PARTYHUB_PARTY_MESSAGES_PER_MINUTE = 100
    actions.handle(pm.pk, {"type": "question.pin", "text": QUESTION})
    root, first = party.submit_prompt(pm, "loneliness", params=SMALL)
    early = say(member, "ooh, wait for it")
    run_render(first.pk)
    child, second = party.submit_prompt(
        member, "two old people, looking away", root.pk, {**SMALL, "count": 2}
    )
    during = [say(pm if n % 2 else member, text) for n, text in enumerate(DURING)]
    hidden_chat = say(expert, HIDDEN_CHAT)
    hide(facilitator, hidden_chat)
    run_render(second.pk)
    large = Image.objects.get(render=first)
    pick = Image.objects.get(render=second, index=1)
    pick.pick(expert, note="Two backs say more than two faces")
    on_pick = comment(member, "the light!", image=pick.pk)
    on_prompt = comment(pm, "too literal?", prompt=child.pk)
    hostile = comment(member, HOSTILE, image=pick.pk)
    hidden_comment = comment(expert, HIDDEN_COMMENT, image=pick.pk)
    hide(facilitator, hidden_comment)
    mention = say(pm, "look at the hands", image=pick.pk)
    elsewhere = say(member, "this one was better", image=large.pk)
    react(pm, "love", image=pick.pk)
    react(member, "love", image=pick.pk)
    react(member, "think", prompt=child.pk)
    react(member, "fire", image=large.pk)
    react(member, "fire", on=False, image=large.pk)
    return {
        "root": root,
        "child": child,
        "large": large,
        "pick": pick,
        "early": early,
        "during": during,
        "hidden": [hidden_chat, hidden_comment],
        "on_pick": on_pick,
        "on_prompt": on_prompt,
        "hostile": hostile,
        "mention": mention,
        "elsewhere": elsewhere,
    }


def open_export(person, party):
    response = person.client.get(f"/p/{party.code}/export.zip")
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def gallery(host, party):
    published = host.post_json(f"/api/parties/{party.code}/publish", {"published": True})
    assert published.status_code == 200
    response = Client().get(f"/g/{party.code}/")
    assert response.status_code == 200
    return response.content.decode()


class Page(HTMLParser):
    """A page's elements (tag, attributes) and the text a reader sees, scripts apart."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.elements, self.chunks, self._in_script = [], [], False
        self.feed(html)
        self.close()
        self.text = "".join(self.chunks)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if not self._in_script:
            self.chunks.append(data)


def discussion(html, image):
    """The text of the pick's (or shortlisted image's) figure on a publication page."""
    start = html.index(f'data-image="{image.pk}"')
    return Page(html[start : html.index("</figure>", start)]).text


def assert_inert(html, scripts):
    """No element that people's words made: only the page's own scripts, no handler, no
    javascript: link, no raw markup of theirs."""
    for raw in LIVE:
        assert raw not in html
    page = Page(html)
    assert sum(1 for tag, _ in page.elements if tag == "script") == scripts
    for tag, attrs in page.elements:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert not any((value or "").lower().startswith("javascript:") for value in attrs.values())
    assert "javascript:alert(2)" not in {attrs.get("href") for tag, attrs in page.elements}
    return page


# --- manifest.json --------------------------------------------------------------------------------


def test_it_exports_the_conversation_in_format_3(party, host, talk, pm, member, expert):
    manifest = json.loads(open_export(host, party).read("manifest.json"))
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(manifest)
    assert manifest["format"] == FORMAT == "partyhub-export/3"
    assert manifest["party"]["question"] == QUESTION

    messages = {m["id"]: m for m in manifest["messages"]}
    assert list(messages) == sorted(messages) and len(messages) == Message.objects.count()
    for row in Message.objects.all():
        assert messages[row.pk] == row.as_dict()
    for hidden in talk["hidden"]:
        assert messages[hidden.pk]["hidden"] is True and messages[hidden.pk]["text"] is None
    assert messages[talk["hostile"].pk]["text"] == HOSTILE.strip(), "exactly as written"
    assert messages[talk["on_prompt"].pk]["prompt"] == talk["child"].pk
    assert messages[talk["mention"].pk]["kind"] == "chat"

    pick, child, large = talk["pick"].pk, talk["child"].pk, talk["large"].pk
    assert manifest["reactions"] == [
        {"image": pick, "prompt": None, "reaction": "love", "member": pm.pk},
        {"image": pick, "prompt": None, "reaction": "love", "member": member.pk},
        {"image": None, "prompt": child, "reaction": "think", "member": member.pk},
    ], "the fire taken back is gone"
    assert large not in {r["image"] for r in manifest["reactions"]}

    credits = {c["name"]: c["messages"] for c in manifest["credits"]}
    assert credits == {
        name: list(
            Message.objects.filter(author__name=name).order_by("pk").values_list("pk", flat=True)
        )
        for name in ("Ann", "Bob", "Eve", "Cy")
    }
    assert set(credits["Eve"]) == {hidden.pk for hidden in talk["hidden"]}, "hidden ones too"


def test_the_schema_holds_a_message_to_the_protocol(party, host, talk):
    manifest = json.loads(open_export(host, party).read("manifest.json"))
    validator = jsonschema.Draft202012Validator(SCHEMA)
    hidden = next(i for i, m in enumerate(manifest["messages"]) if m["hidden"])
    for break_it in (
        lambda m: m["messages"][hidden].update(text="leaked"),
        lambda m: m["messages"][0].update(text=None),
        lambda m: m["messages"][0].update(image=1, prompt=1),
        lambda m: m["messages"][-1].update(kind="comment", image=None, prompt=None),
        lambda m: m["messages"][0].update(kind="whisper"),
        lambda m: m["reactions"][0].update(reaction="meh"),
        lambda m: m["reactions"][0].update(prompt=1),
        lambda m: m["credits"][0].pop("messages"),
        lambda m: m["party"].update(question="two\nlines"),
        lambda m: m.update(format="partyhub-export/2"),
    ):
        broken = json.loads(json.dumps(manifest))
        break_it(broken)
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)


# --- What is published ----------------------------------------------------------------------------


def test_the_hidden_messages_are_nowhere_in_the_zip_nor_the_gallery(party, host, talk):
    archive = open_export(host, party)
    for name in archive.namelist():
        data = archive.read(name)
        for text in (HIDDEN_CHAT, HIDDEN_COMMENT):
            assert text.encode() not in data, name
    html = gallery(host, party)
    index = archive.read("index.html").decode()
    for page in (html, index, archive.read("post.md").decode()):
        assert HIDDEN_CHAT not in page and HIDDEN_COMMENT not in page
        # Nor that something was hidden: moderation is the room's business.
        assert "(hidden)" not in page and "hid a message" not in page
    for page in (html, index):
        replay = json.loads(
            page.split('id="replay-data" type="application/json">')[1].split("</script>")[0]
        )
        types = {entry["type"] for entry in replay["entries"]}
        assert "message.hidden" not in types and "chat.posted" in types
        assert all(entry.get("said") for entry in replay["entries"] if "said" in entry)


def test_post_md_quotes_the_discussion_around_the_pick(party, host, talk):
    post = open_export(host, party).read("post.md").decode()
    lines = [f"- {'Bob' if n % 2 == 0 else 'Ann'}: “{text}”" for n, text in enumerate(DURING)]
    quoted = [
        "> Two backs say more than two faces",
        "Comments:",
        "- Bob: “the light!”",
        "- Ann, on its prompt: “too literal?”",
        f"In the chat, the last {CHAT_LINES} lines (3 earlier ones not quoted here):",
        *lines[3:],
        "- Ann, about this image: “look at the hands”",
    ]
    at = [post.index(line) for line in quoted]
    assert at == sorted(at), "the note first, then the comments, then the chat in order"
    assert lines[2] not in post and "ooh, wait for it" not in post, "before, and another render"
    assert "this one was better" not in post, "about the other image, after the pick was made"
    assert "0 votes, ❤️ 2." in post, "the pick's reactions"
    # Credited: what each said that was not hidden (Eve's two were).
    assert "- **Ann**: 1 prompt, 0 associations, 0 votes, 6 chat lines, 1 comment\n" in post
    assert "- **Bob**: 1 prompt, 0 associations, 0 votes, 7 chat lines, 2 comments\n" in post
    assert "- **Eve**: 0 prompts, 0 associations, 0 votes, 1 pick\n" in post


def test_post_md_keeps_what_people_said_as_text(party, host, talk):
    post = open_export(host, party).read("post.md").decode()
    html = MD.render(post)
    page = Page(html)
    for raw in LIVE + ["<q>"]:
        assert raw not in html
    assert " ".join(HOSTILE.split()) in " ".join(page.text.split())
    tags = {tag for tag, _ in page.elements}
    assert tags <= {
        "h1",
        "h2",
        "h3",
        "p",
        "em",
        "strong",
        "img",
        "blockquote",
        "ol",
        "ul",
        "li",
    } | {"code"}, tags
    assert [tag for tag, _ in page.elements].count("h3") == 1, "one pick, no heading from a comment"


def test_the_gallery_and_index_html_quote_the_discussion_credited_to_authors(party, host, talk):
    archive = open_export(host, party)
    html = gallery(host, party)
    assert_inert(html, scripts=3)  # the replay data, replay.js and lengths.js
    assert_inert(archive.read("index.html").decode(), scripts=2)
    for page in (html, archive.read("index.html").decode()):
        said = " ".join(discussion(page, talk["pick"]).split())
        assert "Bob: the light!" in said and "Ann on its prompt: too literal?" in said
        assert " ".join(HOSTILE.split()) in said
        assert f"In the chat, the last {CHAT_LINES} lines (3 earlier ones not quoted here)" in said
        assert "Ann about this image: look at the hands" in said
        assert said.index("Two backs say more") < said.index("Comments") < said.index("In the chat")
        assert "line 3" not in said.split("In the chat")[1] and "line 4" in said
        # Names isolated, words in their writer's direction.
        assert '<bdi class="pub-talk-who">Bob</bdi>' in page
        assert '<q class="pub-talk-text"><bdi dir="auto">the light!</bdi></q>' in page
        assert "❤️ 2" in said


def test_a_shortlisted_image_tells_its_discussion_when_nothing_was_picked(party, host, pm, member):
    _, render = party.submit_prompt(member, "a chair", params=SMALL)
    say(pm, "a red one?")
    run_render(render.pk)
    image = Image.objects.get(render=render)
    image.shortlist(pm)
    comment(pm, "yes, this", image=image.pk)
    post = open_export(host, party).read("post.md").decode()
    assert "## The shortlist, and how we got there" in post
    assert "- Ann: “yes, this”" in post and "- Ann: “a red one?”" in post
    html = gallery(host, party)
    assert 'class="pub-tile has-talk"' in html
    said = " ".join(discussion(html, image).split())
    assert "Ann: yes, this" in said and "Ann: a red one?" in said


def test_the_publication_quotes_nothing_of_a_hidden_message_whatever_the_archive_says(
    party, host, talk
):
    # A manifest in which a hidden message's event still had its text (as an archive written
    # before the events were rewritten could): the page trusts the message's own hidden flag.
    manifest = json.loads(open_export(host, party).read("manifest.json"))
    hidden = {m.pk for m in talk["hidden"]}
    for event in manifest["events"]:
        if event["type"] in ("chat.posted", "comment.added") and event["message"]["id"] in hidden:
            event["message"] = {**event["message"], "text": "leaked", "hidden": False}
    page = publication(manifest)
    assert not any("leaked" in entry["text"] for entry in page["entries"])
    [story] = page["stories"]
    quoted = story["talk"]["comments"] + story["talk"]["chat"]
    assert hidden.isdisjoint(line["id"] for line in quoted)


def test_what_was_said_about_an_image_hidden_from_the_public_stays_out_of_the_gallery(
    party, host, talk
):
    """A moderator's hidden image (streams) is not on public pages, nor is talk about it; the
    members' export still has it all."""
    Image.objects.filter(pk=talk["large"].pk).update(hidden=True)
    html = gallery(host, party)
    assert "this one was better" not in html
    assert "look at the hands" in html and "the light!" in html  # talk about others stays
    manifest = json.loads(open_export(host, party).read("manifest.json"))
    assert "this one was better" in {m["text"] for m in manifest["messages"]}
