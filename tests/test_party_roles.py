"""Who may do what, from the Prompt Master's, an Art Expert's and a participant's side."""

import pytest

from generation.render import run_render
from partyhub import actions
from partyhub.errors import ApiError
from partyhub.models import Event, Image, Member

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pm(party, host):
    return Member.objects.get(session_key=host.session_key)


@pytest.fixture
def member(party, guest):
    return Member.objects.get(session_key=guest.session_key)


@pytest.fixture
def expert(party, outsider):
    return party.join(outsider.session_key, "Eve", role=Member.Role.ART_EXPERT)


@pytest.fixture
def image(party, member):
    _, render = party.submit_prompt(
        member, "a chair", params={"width": 64, "height": 64, "steps": 1}
    )
    run_render(render.pk)
    return Image.objects.get(render=render)


def refused(member, message):
    with pytest.raises(ApiError) as error:
        actions.handle(member.pk, message)
    return error.value.code


def last_event(party):
    return Event.objects.filter(party=party).last()


def test_only_the_prompt_master_sets_roles(party, pm, member, expert):
    seq = party.events.count()
    assert refused(member, {"type": "role.set", "member": member.pk, "role": "art_expert"}) == (
        "forbidden"
    )
    assert refused(expert, {"type": "role.set", "member": member.pk, "role": "facilitator"}) == (
        "forbidden"
    )
    assert party.events.count() == seq

    actions.handle(pm.pk, {"type": "role.set", "member": member.pk, "role": "facilitator"})
    member.refresh_from_db()
    assert member.role == "facilitator"
    event = last_event(party)
    assert (event.type, event.payload["member"]["role"], event.payload["by"]) == (
        "role.changed",
        "facilitator",
        pm.pk,
    )


def test_role_changes_are_checked(party, pm, member):
    assert refused(pm, {"type": "role.set", "member": member.pk, "role": "king"}) == (
        "invalid_role"
    )
    assert refused(pm, {"type": "role.set", "member": pm.pk, "role": "participant"}) == (
        "invalid_role"
    )
    assert refused(pm, {"type": "role.set", "member": 99999, "role": "participant"}) == (
        "unknown_member"
    )


def test_handing_over_the_prompt_master_role(party, pm, member):
    actions.handle(pm.pk, {"type": "role.set", "member": member.pk, "role": "prompt_master"})
    pm.refresh_from_db()
    member.refresh_from_db()
    assert (pm.role, member.role) == ("participant", "prompt_master")
    assert party.members.filter(role="prompt_master").count() == 1
    # The former Prompt Master has lost the right at once.
    assert refused(pm, {"type": "role.set", "member": member.pk, "role": "participant"}) == (
        "forbidden"
    )


def test_a_member_of_another_party_cannot_be_given_a_role(party, pm, host):
    from partyhub.models import Party

    other, stranger = Party.start(topic="cats", session_key="x" * 32, host_name="Zed")
    assert refused(pm, {"type": "role.set", "member": stranger.pk, "role": "art_expert"}) == (
        "unknown_member"
    )


def test_picks_need_the_art_expert_or_the_prompt_master(party, pm, member, expert, image):
    assert refused(member, {"type": "pick", "image": image.pk}) == "forbidden"
    actions.handle(expert.pk, {"type": "pick", "image": image.pk})
    image.refresh_from_db()
    assert image.picked_by == expert
    assert last_event(party).payload == {"image": image.pk, "member": expert.pk, "picked": True}

    actions.handle(pm.pk, {"type": "pick", "image": image.pk, "picked": False})
    image.refresh_from_db()
    assert image.picked_at is None
    assert refused(pm, {"type": "pick", "image": image.pk, "picked": "yes"}) == "invalid_field"


def test_everyone_votes_once(party, pm, member, image):
    for who in (pm, member, member):
        actions.handle(who.pk, {"type": "vote", "image": image.pk, "value": 1})
    assert image.votes.count() == 2
    assert last_event(party).payload["votes"] == 2
    seq = party.events.count()
    actions.handle(member.pk, {"type": "vote", "image": image.pk, "value": 1})
    assert party.events.count() == seq  # no change, nothing archived
    actions.handle(member.pk, {"type": "vote", "image": image.pk, "value": 0})
    assert image.votes.count() == 1
    assert last_event(party).payload == {
        "image": image.pk,
        "member": member.pk,
        "value": 0,
        "votes": 1,
    }
    for bad in (2, -1, True, "1", 1.0):
        assert refused(member, {"type": "vote", "image": image.pk, "value": bad}) == (
            "invalid_vote"
        )


def test_images_of_another_party_are_out_of_reach(party, image):
    from partyhub.models import Party

    _, stranger = Party.start(topic="cats", session_key="y" * 32, host_name="Zed")
    assert refused(stranger, {"type": "vote", "image": image.pk, "value": 1}) == "unknown_image"
    assert refused(stranger, {"type": "pick", "image": image.pk}) == "unknown_image"
    assert refused(stranger, {"type": "render.cancel", "render": image.render_id}) == (
        "unknown_render"
    )
    assert (
        refused(stranger, {"type": "prompt.submit", "text": "x", "parent": image.render.prompt_id})
        == "unknown_prompt"
    )


def test_everyone_adds_associations_and_prompts(party, member, expert):
    actions.handle(member.pk, {"type": "association.add", "text": " rain "})
    assert last_event(party).payload["association"]["text"] == "rain"
    actions.handle(
        expert.pk,
        {
            "type": "prompt.submit",
            "text": "rain on a window",
            "params": {"width": 64, "height": 64, "steps": 1},
        },
    )
    assert party.prompts.get().author == expert
