"""Who may do what, from the Prompt Master's, an Art Expert's and a participant's side."""

import pytest

from core.errors import ApiError
from partyhub import actions
from partyhub.models import Event, Member

pytestmark = pytest.mark.django_db(transaction=True)


def last_event(party):
    return Event.objects.filter(party=party).last()


def test_only_the_prompt_master_sets_roles(party, pm, member, expert, refused):
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


def test_role_changes_are_checked(party, pm, member, refused):
    assert refused(pm, {"type": "role.set", "member": member.pk, "role": "king"}) == (
        "invalid_role"
    )
    assert refused(pm, {"type": "role.set", "member": pm.pk, "role": "participant"}) == (
        "invalid_role"
    )
    assert refused(pm, {"type": "role.set", "member": 99999, "role": "participant"}) == (
        "unknown_member"
    )


def test_handing_over_the_prompt_master_role(party, pm, member, refused):
    actions.handle(pm.pk, {"type": "role.set", "member": member.pk, "role": "prompt_master"})
    pm.refresh_from_db()
    member.refresh_from_db()
    assert (pm.role, member.role) == ("participant", "prompt_master")
    assert party.members.filter(role="prompt_master").count() == 1
    # The former Prompt Master has lost the right at once.
    assert refused(pm, {"type": "role.set", "member": member.pk, "role": "participant"}) == (
        "forbidden"
    )


def test_a_member_of_another_party_cannot_be_given_a_role(party, pm, host, refused):
    from partyhub.models import Party

    other, stranger = Party.start(topic="cats", session_key="x" * 32, host_name="Zed")
    assert refused(pm, {"type": "role.set", "member": stranger.pk, "role": "art_expert"}) == (
        "unknown_member"
    )


def test_picks_need_the_art_expert_or_the_prompt_master(party, pm, member, expert, image, refused):
    assert refused(member, {"type": "pick", "image": image.pk}) == "forbidden"
    actions.handle(expert.pk, {"type": "pick", "image": image.pk})
    image.refresh_from_db()
    assert image.picked_by == expert
    assert last_event(party).payload == {
        "image": image.pk,
        "member": expert.pk,
        "picked": True,
        "note": "",
    }

    actions.handle(pm.pk, {"type": "pick", "image": image.pk, "picked": False})
    image.refresh_from_db()
    assert image.picked_at is None
    assert refused(pm, {"type": "pick", "image": image.pk, "picked": "yes"}) == "invalid_field"


def test_everyone_votes_once(party, pm, member, image, refused):
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


def test_images_of_another_party_are_out_of_reach(party, image, refused):
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


# --- The facilitator: mute and remove --------------------------------------------------------


@pytest.fixture
def facilitator(party):
    return party.join("facilitator-session", "Fay", role=Member.Role.FACILITATOR)


def mute(target, muted=True):
    return {"type": "member.mute", "member": target.pk, "muted": muted}


ROLES = ["pm", "expert", "facilitator", "member"]
# role -> (may mute and remove others, may pick, may set roles)
MAY = {
    "pm": (True, True, True),
    "expert": (False, True, False),
    "facilitator": (True, False, False),
    "member": (False, False, False),
}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_do_what_it_is_for_and_no_more(request, party, role, image, refused):
    actor = request.getfixturevalue(role)
    other = party.join("other-session", "Otto")
    moderates, picks, sets_roles = MAY[role]
    for allowed, message in [
        (moderates, mute(other)),
        (picks, {"type": "pick", "image": image.pk}),
        (sets_roles, {"type": "role.set", "member": other.pk, "role": "art_expert"}),
    ]:
        seq = party.events.count()
        if allowed:
            actions.handle(actor.pk, message)
            assert party.events.count() == seq + 1
        else:
            assert refused(actor, message) == "forbidden"
            assert party.events.count() == seq  # nothing half-applied
    # Everyone not muted adds prompts and associations and votes.
    actions.handle(actor.pk, {"type": "association.add", "text": "quiet"})
    actions.handle(actor.pk, {"type": "vote", "image": image.pk, "value": 1})


def test_a_muted_member_watches_and_votes_but_adds_nothing(
    party, facilitator, member, image, refused
):
    actions.handle(facilitator.pk, mute(member))
    event = last_event(party)
    assert (event.type, event.payload["member"]["muted"], event.payload["by"]) == (
        "member.muted",
        True,
        facilitator.pk,
    )
    seq = party.events.count()
    assert refused(member, {"type": "prompt.submit", "text": "a shout"}) == "muted"
    assert refused(member, {"type": "association.add", "text": "noise"}) == "muted"
    assert party.events.count() == seq
    actions.handle(member.pk, {"type": "vote", "image": image.pk, "value": 1})

    actions.handle(facilitator.pk, mute(member, muted=False))
    actions.handle(member.pk, {"type": "association.add", "text": "back"})
    assert last_event(party).type == "association.added"


def test_no_one_mutes_or_removes_the_prompt_master_or_themselves(party, pm, facilitator, refused):
    assert refused(facilitator, mute(pm)) == "forbidden"
    assert refused(facilitator, {"type": "member.remove", "member": pm.pk}) == "forbidden"
    assert refused(facilitator, mute(facilitator)) == "forbidden"
    assert refused(facilitator, {"type": "member.mute", "member": pm.pk, "muted": 1}) == (
        "invalid_field"
    )


async def test_a_removed_member_is_disconnected_and_stays_out(party, facilitator, member, guest):
    from channels.db import database_sync_to_async

    from tests.conftest import receive_until

    ws = guest.websocket(party.code, since=party.last_seq)
    assert (await ws.connect())[0]
    await database_sync_to_async(actions.handle)(
        facilitator.pk, {"type": "member.remove", "member": member.pk}
    )
    frames = await receive_until(ws, "member.removed")
    assert frames[-1]["member"] == {**member.as_dict(), "removed": True}
    assert (await ws.receive_output(timeout=10))["code"] == 4403  # closed: not a member
    with pytest.raises(ApiError) as error:
        await database_sync_to_async(actions.handle)(
            member.pk, {"type": "association.add", "text": "still here?"}
        )
    assert error.value.code == "removed"
    answer = await database_sync_to_async(guest.post_json)(
        f"/api/parties/{party.code}/join", {"name": "Bob again"}
    )
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "removed")
    snapshot = await database_sync_to_async(guest.client.get)(f"/api/parties/{party.code}")
    assert snapshot.status_code == 403  # a private party: members only
    # The next connection is refused outright.
    again = guest.websocket(party.code, since=0)
    await again.connect()
    assert (await again.receive_output(timeout=10))["code"] == 4403
