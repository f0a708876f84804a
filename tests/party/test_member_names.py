"""One name per person in a party: a second Ann is "Ann 2". A removed member is no longer one of
the party's people: not counted, and their name is free again."""

import json
import zipfile

import pytest

from partyhub.export import build_manifest, build_zip, publication
from partyhub.models import Event, Member
from partyhub.snapshot import snapshot
from tests.conftest import Person

pytestmark = pytest.mark.django_db


def names(party):
    return list(party.members.order_by("pk").values_list("name", flat=True))


def test_a_second_ann_joins_as_ann_2_and_a_third_as_ann_3(party, host):
    # The host is Ann already.
    for _ in range(2):
        Person("Ann").post_json(f"/api/parties/{party.code}/join", {"name": "Ann"})
    assert names(party) == ["Ann", "Bob", "Ann 2", "Ann 3"]


def test_the_join_answer_and_the_event_carry_the_name_given(party):
    response = Person("ann").post_json(f"/api/parties/{party.code}/join", {"name": " ann "})
    assert response.status_code == 200
    assert response.json()["member"]["name"] == "ann 2"  # names compare in any case
    joined = Event.objects.filter(party=party, type="member.joined").last()
    assert joined.payload["member"]["name"] == "ann 2"


def test_joining_again_under_the_taken_name_changes_nothing(party):
    person = Person("Ann")
    party.join(person.session_key, "Ann")
    events = Event.objects.filter(party=party).count()
    member = party.join(person.session_key, "Ann")
    assert member.name == "Ann 2"
    assert Event.objects.filter(party=party).count() == events  # the same name: nothing archived


def test_a_rename_to_someone_else_s_name_is_numbered_and_a_free_one_is_kept(party, guest):
    assert party.join(guest.session_key, "ANN").name == "ANN 2"
    assert party.join(guest.session_key, "Bobby").name == "Bobby"
    # Keeping your own name is not taking it from anyone.
    assert party.join(guest.session_key, "bobby").name == "bobby"


def test_a_long_name_keeps_its_number_within_99_characters(party):
    long = "A" * 99
    party.join(Person("x").session_key, long)
    second = party.join(Person("y").session_key, long)
    assert second.name == "A" * 97 + " 2" and len(second.name) == 99


def test_a_removed_member_s_name_is_free_again(party, pm):
    first = party.join(Person("Cy").session_key, "Cy")
    pm.remove(first)
    assert party.join(Person("Cy").session_key, "Cy").name == "Cy"


def test_removed_members_are_not_counted_among_the_party_s_people(party, pm, host):
    eve = party.join(Person("Eve").session_key, "Eve")
    pm.remove(eve)
    snap = snapshot(party, pm)
    # Still listed, so that what they wrote keeps a name, but marked and not counted.
    assert [(m["name"], m["removed"]) for m in snap["members"]] == [
        ("Ann", False),
        ("Bob", False),
        ("Eve", True),
    ]
    assert snap["people"] == 2
    page = publication(build_manifest(party))
    assert [m["name"] for m in page["members"]] == ["Ann", "Bob"]
    with zipfile.ZipFile(build_zip(party)) as archive:
        post = archive.read("post.md").decode()
        manifest = json.loads(archive.read("manifest.json"))
    assert "with 2 people: Ann (Prompt Master), Bob." in post
    assert len(manifest["members"]) == 3  # the manifest keeps everyone, marked


def test_the_published_gallery_counts_only_the_people(party, pm, host):
    pm.remove(party.join(Person("Eve").session_key, "Eve"))
    party.set_published(pm, True)
    html = host.client.get(f"/g/{party.code}/").content.decode()
    assert "2 people" in html and "3 people" not in html


def test_two_parties_may_each_have_an_ann(party):
    from partyhub.models import Party

    other, host = Party.start(topic="x", session_key=Person("Ann").session_key, host_name="Ann")
    assert host.name == "Ann"
    assert Member.objects.filter(name="Ann").count() == 2
