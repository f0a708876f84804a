"""The replay timeline: one human line per archived event, who acted, which images appeared."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partyhub.models import Member
from partyhub.timeline import timeline

ANN = {"id": 1, "name": "Ann", "role": "prompt_master", "muted": False, "removed": False}
BOB = {"id": 2, "name": "Bob", "role": "participant", "muted": False, "removed": False}
CY = {"id": 3, "name": "Cy", "role": "participant", "muted": False, "removed": False}


def events(*items):
    """Archived events from (type, payload) pairs, seq 1, 2, ... a second apart."""
    return [
        {"type": kind, "seq": seq, "at": f"2026-11-23T20:00:{seq:02d}Z", **payload}
        for seq, (kind, payload) in enumerate(items, start=1)
    ]


def prompt(id, text, author, parent=None, status="submitted"):
    return {
        "id": id,
        "text": text,
        "parent": parent,
        "author": author,
        "params": {},
        "status": status,
    }


# Every event type of protocol v1, in an order a real party could produce them.
PARTY = events(
    ("member.joined", {"member": ANN}),
    ("member.joined", {"member": BOB}),
    ("prompt.added", {"prompt": prompt(1, "two old people looking away from each other", 1)}),
    ("render.queued", {"render": {"id": 1, "prompt": 1, "position": 0, "params": {}}}),
    (
        "render.done",
        {
            "render": 1,
            "prompt": 1,
            "images": [{"id": 10, "render": 1, "url": "/m/a.png"}, {"id": 11, "url": "/m/b.png"}],
        },
    ),
    ("vote.changed", {"image": 10, "member": 2, "value": 1, "votes": 1}),
    ("vote.changed", {"image": 10, "member": 2, "value": 0, "votes": 0}),
    ("association.added", {"association": {"id": 1, "text": "winter light", "author": 2}}),
    ("role.changed", {"member": {**BOB, "role": "art_expert"}, "by": 1}),
    ("image.shortlisted", {"image": 11, "member": 2, "shortlisted": True}),
    ("image.shortlisted", {"image": 11, "member": 2, "shortlisted": False}),
    ("image.picked", {"image": 11, "member": 2, "picked": True, "note": "they almost touch"}),
    ("image.picked", {"image": 11, "member": 2, "picked": False, "note": ""}),
    ("party.steered", {"steered": True, "by": 1}),
    ("prompt.proposed", {"prompt": prompt(2, "a park bench", 2, parent=1, status="proposed")}),
    ("proposal.accepted", {"prompt": 2, "by": 1}),
    ("render.queued", {"render": {"id": 2, "prompt": 2, "position": 0, "params": {}}}),
    ("render.failed", {"render": 2, "prompt": 2, "error": {"code": "gpu_oom", "message": "Out."}}),
    ("prompt.proposed", {"prompt": prompt(3, "an empty chair", 2, status="proposed")}),
    ("proposal.set_aside", {"prompt": 3, "by": 1}),
    ("prompt.added", {"prompt": prompt(4, "two old people on a park bench", 1, parent=1)}),
    ("render.queued", {"render": {"id": 3, "prompt": 4, "position": 1, "params": {}}}),
    ("render.cancelled", {"render": 3, "prompt": 4, "by": 1}),
    ("render.queued", {"render": {"id": 4, "prompt": 4, "position": 0, "params": {}}}),
    ("render.filtered", {"render": 4, "prompt": 4}),
    ("palette.added", {"entry": {"kind": "artist", "text": "Hilma af Klint"}, "by": 1}),
    ("member.joined", {"member": CY}),
    ("member.muted", {"member": {**CY, "muted": True}, "by": 1}),
    ("member.muted", {"member": {**CY, "muted": False}, "by": 1}),
    ("member.removed", {"member": {**CY, "removed": True}, "by": 1}),
    ("role.changed", {"member": {**BOB, "role": "prompt_master"}, "by": 1}),
    ("role.changed", {"member": {**ANN, "role": "participant"}, "by": 1}),
    ("member.joined", {"member": {**BOB, "name": "Robert"}}),
    ("party.published", {"published": True, "by": 2}),
)

EXPECTED = [
    ("Ann", "Ann started the party as Prompt Master", []),
    ("Bob", "Bob joined", []),
    ("Ann", "Ann wrote “two old people looking away from each other”", []),
    ("Ann", "render 1 queued: “two old people looking away from each other”", []),
    ("Ann", "render 1 finished: 2 images", [10, 11]),
    ("Bob", "Bob voted for image 10 (1 vote)", []),
    ("Bob", "Bob took back their vote for image 10 (0 votes)", []),
    ("Bob", "Bob associated “winter light”", []),
    ("Ann", "Ann made Bob an Art Expert", []),
    ("Bob", "Bob shortlisted image 11", []),
    ("Bob", "Bob took image 11 off the shortlist", []),
    ("Bob", "Bob picked image 11: “they almost touch”", []),
    ("Bob", "Bob unpicked image 11", []),
    ("Ann", "Ann steered the party: the others propose, only they render", []),
    ("Bob", "Bob proposed “a park bench”", []),
    ("Ann", "Ann accepted Bob’s proposal “a park bench”", []),
    ("Bob", "render 2 queued: “a park bench”", []),
    ("Bob", "render 2 failed: Out.", []),
    ("Bob", "Bob proposed “an empty chair”", []),
    ("Ann", "Ann set aside Bob’s proposal “an empty chair”", []),
    (
        "Ann",
        "Ann refined “two old people looking away from each other”"
        " into “two old people on a park bench”",
        [],
    ),
    ("Ann", "render 3 queued: “two old people on a park bench”", []),
    ("Ann", "Ann cancelled render 3", []),
    ("Ann", "render 4 queued: “two old people on a park bench”", []),
    ("Ann", "render 4 was held back by the safety checker", []),
    ("Ann", "Ann added the artist “Hilma af Klint” to the palette", []),
    ("Cy", "Cy joined", []),
    ("Ann", "Ann muted Cy", []),
    ("Ann", "Ann unmuted Cy", []),
    ("Ann", "Ann removed Cy from the party", []),
    ("Ann", "Ann made Bob Prompt Master", []),
    ("Ann", "Ann is now a participant", []),
    ("Robert", "Bob is now called Robert", []),
    ("Robert", "Robert published the party’s gallery", []),
]


def test_it_describes_every_event_type_with_who_and_images():
    entries = timeline(PARTY, {})
    assert [(e["who"], e["text"], e["images"]) for e in entries] == EXPECTED
    assert [e["seq"] for e in entries] == list(range(1, len(PARTY) + 1))
    assert [e["type"] for e in entries] == [e["type"] for e in PARTY]
    assert entries[0]["at"] == "2026-11-23T20:00:01Z"
    assert all(set(e) == {"seq", "at", "type", "who", "text", "images"} for e in entries)


def test_it_takes_names_from_members_when_the_events_do_not_have_them():
    # A page of the archive that starts after the joins: the names come from `members`,
    # whose keys may be strings (JSON object keys) or ints.
    later = [e for e in PARTY if e["seq"] >= 6][:3]
    assert [e["who"] for e in timeline(later, {"2": "Bob"})] == ["Bob", "Bob", "Bob"]
    assert [e["who"] for e in timeline(later, {2: "Bob"})] == ["Bob", "Bob", "Bob"]
    assert timeline(later, {})[0]["text"] == "someone voted for image 10 (1 vote)"


def test_it_finds_a_renders_prompt_through_its_queued_event():
    # render.done without a `prompt` field (older archives): render.queued said which prompt.
    entries = timeline(
        events(
            ("member.joined", {"member": BOB}),
            ("prompt.added", {"prompt": prompt(7, "a cat", 2)}),
            ("render.queued", {"render": {"id": 5, "prompt": 7, "position": 0}}),
            ("render.done", {"render": 5, "images": [{"id": 30}], "animation": "/m/w.webp"}),
        ),
        {},
    )
    assert entries[-1]["who"] == "Bob"
    assert entries[-1]["text"] == "render 5 finished: an animation and 1 image"
    assert entries[-1]["images"] == [30]


def test_it_describes_unknown_and_malformed_events_without_raising():
    entries = timeline(
        events(
            ("member.joined", {"member": ANN}),
            ("party.renamed", {"title": "x", "by": 1}),
            ("gallery.printed", {"member": {"id": 1, "name": "Ann"}}),
            ("weather.changed", {}),
            ("render.done", {"images": "not a list"}),  # no render id, images not a list
            ("vote.changed", {}),  # no member
            ("prompt.added", {"prompt": None}),
        )
        + ["not an event"],
        {},
    )
    assert [(e["who"], e["text"], e["images"]) for e in entries[1:]] == [
        ("Ann", "Ann: party renamed", []),
        ("Ann", "Ann: gallery printed", []),
        (None, "Weather changed", []),
        (None, "Render done", []),
        (None, "Vote changed", []),
        (None, "Prompt added", []),
    ]
    assert timeline([], {}) == []


def test_it_shortens_long_prompts_to_one_line():
    text = "a very long prompt " * 10
    (_, entry) = timeline(
        events(
            ("member.joined", {"member": ANN}), ("prompt.added", {"prompt": prompt(1, text, 1)})
        ),
        {},
    )
    quoted = entry["text"].removeprefix("Ann wrote ")
    assert quoted.startswith("“a very long prompt a very") and quoted.endswith("…”")
    assert len(quoted) == 80 + 2


@pytest.mark.django_db
def test_it_reads_a_real_partys_archive(party, pm, member, image):
    image.vote(pm, 1)
    pm.set_role(member, Member.Role.ART_EXPERT)
    image.pick(member, note="the light")
    archive = [e.as_message() for e in party.events.order_by("seq")]
    names = {m.pk: m.name for m in party.members.all()}

    entries = timeline(archive, names)

    assert [e["seq"] for e in entries] == [e["seq"] for e in archive]
    texts = [e["text"] for e in entries]
    assert texts[:4] == [
        "Ann started the party as Prompt Master",
        "Bob joined",
        "Bob wrote “a chair”",
        f"render {image.render_id} queued: “a chair”",
    ]
    done = next(e for e in entries if e["type"] == "render.done")
    assert done["images"] == [image.pk] and done["who"] == "Bob"
    assert texts[-3:] == [
        f"Ann voted for image {image.pk} (1 vote)",
        "Ann made Bob an Art Expert",
        f"Bob picked image {image.pk}: “the light”",
    ]


# --- The party talks: chat, comments, reactions, moderation, the pinned question ------------------


def message(id, kind, author, text, image=None, prompt=None, hidden=False):
    return {
        "id": id,
        "kind": kind,
        "author": author,
        "text": None if hidden else text,
        "image": image,
        "prompt": prompt,
        "hidden": hidden,
        "client_id": "",
        "at": "2026-12-05T10:00:00.123456Z",
    }


def reaction(member, reaction, on, image=None, prompt=None, count=1):
    return {
        "image": image,
        "prompt": prompt,
        "reaction": reaction,
        "member": member,
        "on": on,
        "count": count,
    }


TALK = events(
    ("member.joined", {"member": ANN}),
    ("member.joined", {"member": BOB}),
    ("member.joined", {"member": {**CY, "role": "facilitator"}}),
    ("question.pinned", {"question": "What does  loneliness\nlook like?", "by": 3}),
    ("prompt.added", {"prompt": prompt(1, "two old people looking away from each other", 1)}),
    ("chat.posted", {"message": message(1, "chat", 2, "ooh\n\nwait   for it")}),
    ("render.done", {"render": 1, "prompt": 1, "images": [{"id": 10}]}),
    ("chat.posted", {"message": message(2, "chat", 1, "look at the hands", image=10)}),
    ("chat.posted", {"message": message(3, "chat", 2, "more snow", prompt=1)}),
    ("comment.added", {"message": message(4, "comment", 2, "the light!", image=10)}),
    ("comment.added", {"message": message(5, "comment", 1, "too literal?", prompt=1)}),
    ("chat.posted", {"message": message(6, "chat", 2, "", hidden=True)}),
    ("comment.added", {"message": message(7, "comment", 2, "", image=10, hidden=True)}),
    (
        "message.hidden",
        {"message": message(6, "chat", 2, "", hidden=True), "hidden": True, "by": 3},
    ),
    # Message 3 hidden and shown again: the archive then carries it shown in both events.
    ("message.hidden", {"message": message(3, "chat", 2, "more snow"), "hidden": True, "by": 3}),
    ("message.hidden", {"message": message(3, "chat", 2, "more snow"), "hidden": False, "by": 3}),
    ("reaction.changed", reaction(1, "love", True, image=10)),
    ("reaction.changed", reaction(1, "love", False, image=10, count=0)),
    ("reaction.changed", reaction(1, "love", True, image=10)),
    ("reaction.changed", reaction(2, "love", True, image=10, count=2)),
    ("reaction.changed", reaction(2, "think", True, prompt=1)),
    ("question.pinned", {"question": None, "by": 3}),
)


def test_it_tells_the_conversation_credited_to_its_authors():
    entries = timeline(TALK, {})
    prompt_quote = "“two old people looking away from each other”"
    assert [(e["seq"], e["who"], e["text"], e["images"]) for e in entries[3:]] == [
        (4, "Cy", "Cy pinned the question: “What does loneliness look like?”", []),
        (5, "Ann", f"Ann wrote {prompt_quote}", []),
        (6, "Bob", "Bob: ooh wait for it", []),
        (7, "Ann", "render 1 finished: 1 image", [10]),
        (8, "Ann", "Ann about image 10: look at the hands", [10]),
        (9, "Bob", f"Bob about {prompt_quote}: more snow", []),
        (10, "Bob", "Bob on image 10: the light!", [10]),
        (11, "Ann", f"Ann on {prompt_quote}: too literal?", []),
        (12, "Bob", "Bob: (hidden)", []),
        (13, "Bob", "Bob on image 10: (hidden)", [10]),
        (14, "Cy", "Cy hid a message by Bob", []),
        (15, "Cy", "Cy hid a message by Bob", []),
        (16, "Cy", "Cy showed a message by Bob again", []),
        # Seq 18 takes Ann's heart back and 19 gives it again: neither is news.
        (17, "Ann", "Ann reacted ❤️ to image 10", [10]),
        (20, "Bob", "Bob reacted ❤️ to image 10", [10]),
        (21, "Bob", f"Bob reacted 🤔 to {prompt_quote}", []),
        (22, "Cy", "Cy took the question down", []),
    ]


def test_it_gives_chat_and_comment_entries_the_words_said_apart():
    entries = {e["seq"]: e for e in timeline(TALK, {})}
    assert entries[6]["said"] == "ooh wait for it"
    assert entries[10]["said"] == "the light!"
    assert entries[12]["said"] is None and entries[13]["said"] is None, "hidden: no words"
    # Each line ends with what was said, so the replay can set the words apart.
    assert all(entries[s]["text"].endswith(f": {entries[s]['said']}") for s in (6, 8, 9, 10, 11))
    assert all("said" not in entries[s] for s in (4, 5, 7, 14, 17, 22))


def test_it_quotes_a_chat_line_in_full_on_one_line():
    long = "word " * 120
    [_, entry] = timeline(
        events(
            ("member.joined", {"member": ANN}),
            ("chat.posted", {"message": message(1, "chat", 1, long + "\r\nend\u2028")}),
        ),
        {},
    )
    assert entry["text"] == "Ann: " + "word " * 120 + "end"


def test_it_never_shows_a_hidden_message_s_words():
    # However the archive carries a hidden message (text null, or a text left beside hidden:
    # true), its entry says "(hidden)".
    leaked = {**message(1, "chat", 1, "secret"), "hidden": True, "text": "secret"}
    entries = timeline(
        events(
            ("member.joined", {"member": ANN}),
            ("chat.posted", {"message": leaked}),
            ("comment.added", {"message": {**leaked, "kind": "comment", "image": 3}}),
            ("message.hidden", {"message": leaked, "by": 1}),
        ),
        {},
    )
    assert not any("secret" in e["text"] for e in entries)
    assert [e["text"] for e in entries[1:3]] == ["Ann: (hidden)", "Ann on image 3: (hidden)"]


TALK_TYPES = [
    "chat.posted",
    "comment.added",
    "reaction.changed",
    "message.hidden",
    "question.pinned",
]
# No subnormal floats: a library loaded by an earlier test (built with -ffast-math) may have
# turned them off for the whole process, and Hypothesis refuses to draw them then.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_subnormal=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = ["message", "image", "prompt", "reaction", "member", "on", "by", "question", "hidden"]
MESSAGE_FIELDS = ["id", "kind", "author", "text", "image", "prompt", "hidden"]
PAYLOADS = st.fixed_dictionaries(
    {},
    optional={
        "message": JSON
        | st.fixed_dictionaries({}, optional={field: JSON for field in MESSAGE_FIELDS}),
        **{field: JSON for field in FIELDS if field != "message"},
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TALK_TYPES), PAYLOADS), max_size=8), JSON)
def test_it_never_raises_on_what_the_party_says(items, names):
    archive = [e for e in events(*items)]
    members = names if isinstance(names, dict) else {}
    entries = timeline(TALK[:5] + archive, members)
    assert len(entries) <= 5 + len(archive)
    for entry in entries:
        assert isinstance(entry["text"], str) and entry["text"]
        assert all(isinstance(image, int) for image in entry["images"])
