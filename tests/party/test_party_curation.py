"""Curation: stars (votes) from everyone, the Art Expert's shortlist, picks with a one-line note."""

import threading

import pytest
from django.db import connection, connections

from partyhub import actions
from partyhub.models import Event, Vote
from partyhub.snapshot import snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def events(party, event_type):
    return [event.payload for event in Event.objects.filter(party=party, type=event_type)]


@pytest.mark.parametrize("role", ["art_expert", "prompt_master"])
def test_it_picks_with_a_note_and_changes_the_note(party, pm, expert, image, role):
    picker = expert if role == "art_expert" else pm
    actions.handle(picker.pk, {"type": "pick", "image": image.pk, "note": "the light is right"})
    image.refresh_from_db()
    assert (image.picked_by_id, image.pick_note) == (picker.pk, "the light is right")
    picked_at = image.picked_at

    # Picking again without a note keeps it; with one, changes it (the first pick time stays).
    actions.handle(picker.pk, {"type": "pick", "image": image.pk})
    actions.handle(picker.pk, {"type": "pick", "image": image.pk, "note": "  lonelier  "})
    image.refresh_from_db()
    assert (image.pick_note, image.picked_at) == ("lonelier", picked_at)
    assert [(e["picked"], e["note"]) for e in events(party, "image.picked")] == [
        (True, "the light is right"),
        (True, "lonelier"),
    ]

    actions.handle(picker.pk, {"type": "pick", "image": image.pk, "picked": False})
    image.refresh_from_db()
    assert (image.picked_at, image.picked_by_id, image.pick_note) == (None, None, "")
    picked = snapshot(party)["images"][0]
    assert (picked["picked"], picked["note"]) == (False, "")


def test_it_refuses_bad_notes_and_changes_nothing(party, expert, image, refused):
    seq = party.events.count()
    for note in ["x" * 201, "two\nlines", 7]:
        assert refused(expert, {"type": "pick", "image": image.pk, "note": note}) == "invalid_note"
    assert refused(expert, {"type": "pick", "image": image.pk, "picked": False, "note": "x"}) == (
        "invalid_note"
    )
    image.refresh_from_db()
    assert image.picked_at is None and party.events.count() == seq


@pytest.mark.parametrize("role", ["participant", "facilitator"])
def test_only_the_art_expert_and_prompt_master_curate(party, pm, member, image, role, refused):
    member.role = role
    member.save()
    assert refused(member, {"type": "pick", "image": image.pk, "note": "mine"}) == "forbidden"
    assert refused(member, {"type": "shortlist", "image": image.pk}) == "forbidden"
    image.refresh_from_db()
    assert (image.picked_at, image.shortlisted) == (None, False)


def test_it_shortlists_and_takes_off_once_each(party, expert, image, refused):
    actions.handle(expert.pk, {"type": "shortlist", "image": image.pk})
    actions.handle(expert.pk, {"type": "shortlist", "image": image.pk, "shortlisted": True})
    image.refresh_from_db()
    assert image.shortlisted
    assert snapshot(party)["images"][0]["shortlisted"] is True
    actions.handle(expert.pk, {"type": "shortlist", "image": image.pk, "shortlisted": False})
    assert [e["shortlisted"] for e in events(party, "image.shortlisted")] == [True, False]
    assert refused(expert, {"type": "shortlist", "image": image.pk, "shortlisted": 1}) == (
        "invalid_field"
    )


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL (make test)"
)
def test_concurrent_stars_are_neither_lost_nor_doubled(party, image):
    """Twelve people star one image at the same moment, twice each: twelve votes, and the
    archived totals climb 1..12 with none repeated, so every client ends at the true count."""
    voters = [party.join(f"session-{n}", f"voter {n}") for n in range(12)]
    start = threading.Barrier(len(voters))
    failures = []

    def star(voter):
        try:
            start.wait()
            for _ in range(2):  # a double click: the second changes nothing
                actions.handle(voter.pk, {"type": "vote", "image": image.pk, "value": 1})
        except Exception as error:  # reported below: an assert in a thread would be lost
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=star, args=(voter,)) for voter in voters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert Vote.objects.filter(image=image).count() == 12
    totals = [e["votes"] for e in events(party, "vote.changed")]
    assert sorted(totals) == list(range(1, 13))
    assert totals[-1] == 12  # in seq order, the last event carries the final count
    assert snapshot(party)["images"][0]["votes"] == 12
