"""Word associations (counted per person) and the palette of styles and artists (built-in data,
extended by the host per party)."""

import pytest

from partyhub import actions, palette
from partyhub.models import Association, Event
from partyhub.snapshot import snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_person_says_a_word_once_others_add_to_its_count(party, pm, member, refused):
    actions.handle(member.pk, {"type": "association.add", "text": "winter light"})
    assert refused(member, {"type": "association.add", "text": "Winter Light "}) == (
        "duplicate_association"
    )
    actions.handle(pm.pk, {"type": "association.add", "text": "Winter light"})
    texts = [a["text"] for a in snapshot(party)["associations"]]
    assert texts == ["winter light", "Winter light"]  # the board counts them as one word, twice
    assert Association.objects.count() == 2


def test_the_builtin_palette_is_data_with_every_kind():
    entries = palette.builtin()
    kinds = {entry["kind"] for entry in entries}
    assert kinds == set(palette.KINDS)
    texts = {entry["text"] for entry in entries}
    assert {"oil on canvas", "ukiyo-e", "Edvard Munch", "old photo, 1960s", "sepia"} <= texts


def test_the_host_extends_the_party_palette(party, pm, member, refused):
    actions.handle(pm.pk, {"type": "palette.add", "kind": "artist", "text": "  Hilma  af Klint "})
    party.refresh_from_db()
    assert party.palette == [{"kind": "artist", "text": "Hilma af Klint"}]
    event = Event.objects.filter(type="palette.added").get()
    assert event.payload == {"entry": {"kind": "artist", "text": "Hilma af Klint"}, "by": pm.pk}
    shown = snapshot(party)["palette"]
    assert {"kind": "artist", "text": "Hilma af Klint", "builtin": False} in shown
    assert [e["kind"] for e in shown] == sorted((e["kind"] for e in shown), key=palette.KINDS.index)

    seq = party.last_seq
    assert refused(member, {"type": "palette.add", "kind": "artist", "text": "Me"}) == "forbidden"
    assert refused(pm, {"type": "palette.add", "kind": "artist", "text": "hilma af klint"}) == (
        "duplicate_entry"
    )
    assert refused(pm, {"type": "palette.add", "kind": "technique", "text": "Watercolor"}) == (
        "duplicate_entry"
    )
    assert refused(pm, {"type": "palette.add", "kind": "mood", "text": "calm"}) == "invalid_kind"
    assert refused(pm, {"type": "palette.add", "kind": "style", "text": "x" * 61}) == (
        "invalid_text"
    )
    party.refresh_from_db()
    assert party.last_seq == seq and len(party.palette) == 1


def test_another_party_does_not_see_this_party_s_additions(party, pm, outsider):
    actions.handle(pm.pk, {"type": "palette.add", "kind": "style", "text": "vaporwave"})
    other, _ = party.__class__.start(
        topic="tides", session_key=outsider.session_key, host_name="Eve"
    )
    assert "vaporwave" not in {e["text"] for e in snapshot(other)["palette"]}
