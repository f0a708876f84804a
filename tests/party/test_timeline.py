"""The replay timeline: one human line per archived event, who acted, which images appeared."""

import pytest

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
