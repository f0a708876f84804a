"""Steering: participants propose refinements; the Prompt Master accepts (it renders) or sets
them aside. And the prompt tree drawn from it all, with each refinement's word changes."""

import re

import pytest

from partyhub import actions
from partyhub.models import Event, Prompt, Render
from partyhub.snapshot import snapshot
from partyhub.tree import tree_svg, word_diff

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def root(party, pm):
    prompt, _ = party.submit_prompt(pm, "loneliness")
    return prompt


def event_types(party, after):
    return list(party.events_after(after).values_list("type", flat=True))


def test_an_accepted_proposal_renders_credited_to_its_author(party, pm, member, root, refused):
    seq = party.last_seq
    actions.handle(
        member.pk,
        {"type": "prompt.propose", "text": "two old people, loneliness", "parent": root.pk},
    )
    proposal = Prompt.objects.get(author=member)
    assert (proposal.status, proposal.parent_id, proposal.renders.count()) == (
        "proposed",
        root.pk,
        0,
    )
    assert event_types(party, seq) == ["prompt.proposed"]
    assert snapshot(party)["prompts"][0]["children"][0]["status"] == "proposed"

    seq = Prompt.objects.get(pk=root.pk).party.last_seq
    actions.handle(pm.pk, {"type": "proposal.accept", "prompt": proposal.pk})
    proposal.refresh_from_db()
    assert proposal.status == "submitted" and proposal.author_id == member.pk
    render = Render.objects.get(prompt=proposal)
    assert render.params == proposal.params
    assert event_types(party, seq) == ["proposal.accepted", "render.queued"]
    accepted = Event.objects.get(party=party, type="proposal.accepted").payload
    assert accepted == {"prompt": proposal.pk, "by": pm.pk}

    # Accepting twice (two clicks, two tabs) cannot queue a second render.
    assert refused(pm, {"type": "proposal.accept", "prompt": proposal.pk}) == "not_proposed"
    assert Render.objects.filter(prompt=proposal).count() == 1


def test_it_sets_a_proposal_aside(party, pm, member, root, refused):
    actions.handle(member.pk, {"type": "prompt.propose", "text": "a crowd", "parent": root.pk})
    proposal = Prompt.objects.get(author=member)
    actions.handle(pm.pk, {"type": "proposal.set_aside", "prompt": proposal.pk})
    proposal.refresh_from_db()
    assert proposal.status == "set_aside" and not proposal.renders.exists()
    assert refused(pm, {"type": "proposal.accept", "prompt": proposal.pk}) == "not_proposed"
    assert refused(pm, {"type": "proposal.accept", "prompt": root.pk}) == "not_proposed"


@pytest.mark.parametrize("role", ["participant", "art_expert", "facilitator"])
def test_only_the_prompt_master_decides_on_proposals(party, member, root, role, refused):
    member.role = role
    member.save()
    actions.handle(member.pk, {"type": "prompt.propose", "text": "mine", "parent": root.pk})
    proposal = Prompt.objects.get(author=member)
    for decision in ("proposal.accept", "proposal.set_aside"):
        assert refused(member, {"type": decision, "prompt": proposal.pk}) == "forbidden"
    proposal.refresh_from_db()
    assert proposal.status == "proposed"


def test_proposals_are_checked_like_prompts(party, pm, member, root, refused):
    seq = party.last_seq
    assert refused(member, {"type": "prompt.propose", "text": " "}) == "invalid_prompt"
    assert (
        refused(member, {"type": "prompt.propose", "text": "x", "params": {"steps": 999}})
        == "invalid_param"
    )
    assert refused(member, {"type": "prompt.propose", "text": "x", "parent": 99999}) == (
        "unknown_prompt"
    )
    assert refused(pm, {"type": "proposal.accept", "prompt": 99999}) == "unknown_prompt"
    member.muted = True
    member.save()
    assert refused(member, {"type": "prompt.propose", "text": "x"}) == "muted"
    party.refresh_from_db()
    assert party.last_seq == seq and not Prompt.objects.filter(author=member).exists()


def test_in_a_steered_party_only_the_prompt_master_renders(party, pm, member, refused):
    assert refused(member, {"type": "party.steer", "steered": True}) == "forbidden"
    actions.handle(pm.pk, {"type": "party.steer", "steered": True})
    actions.handle(pm.pk, {"type": "party.steer", "steered": True})  # no change, no event
    assert [e.payload for e in Event.objects.filter(type="party.steered")] == [
        {"steered": True, "by": pm.pk}
    ]
    assert snapshot(party)["steered"] is True

    assert refused(member, {"type": "prompt.submit", "text": "mine"}) == "steered"
    actions.handle(pm.pk, {"type": "prompt.submit", "text": "the host's"})
    assert list(Prompt.objects.values_list("text", flat=True)) == ["the host's"]

    actions.handle(pm.pk, {"type": "party.steer", "steered": False})
    actions.handle(member.pk, {"type": "prompt.submit", "text": "mine"})
    assert Render.objects.filter(prompt__author=member).count() == 1


def test_a_party_can_start_steered(host):
    response = host.post_json("/api/parties", {"topic": "tides", "steered": True})
    assert response.status_code == 201
    assert host.client.get(f"/api/parties/{response.json()['code']}").json()["steered"] is True
    response = host.post_json("/api/parties", {"topic": "tides", "steered": "yes"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_steered")


# --- The tree ---------------------------------------------------------------------------------


def test_word_diff_marks_added_and_removed_words():
    tokens, removed = word_diff(
        "two old people looking away from each other",
        "Two old people on a park bench, looking away",
    )
    assert [word for word, added in tokens if added] == ["on", "a", "park", "bench,"]
    assert removed == ["from", "each", "other"]
    assert word_diff(None, "loneliness") == ([("loneliness", False)], [])
    assert word_diff("a chair", "a chair") == ([("a", False), ("chair", False)], [])


def test_the_tree_svg_draws_every_prompt_with_its_diff_and_status(party, pm, member, root):
    child, _ = party.submit_prompt(pm, "two old people, loneliness", parent_id=root.pk)
    actions.handle(
        member.pk, {"type": "prompt.propose", "text": "two <old> people", "parent": child.pk}
    )
    svg = tree_svg(
        [p.as_dict() for p in party.prompts.order_by("pk")],
        {root.pk: ["/media/a.png"]},
        authors={pm.pk: "Ann", member.pk: "Bob"},
    )
    nodes = re.findall(r'<g class="pt-node pt-(\w+)" data-prompt="(\d+)"', svg)
    proposal = Prompt.objects.get(author=member)
    assert nodes == [
        ("submitted", str(root.pk)),
        ("submitted", str(child.pk)),
        ("proposed", str(proposal.pk)),
    ]
    # The child added "two old people,"; the proposal replaced "old" with "<old>" (escaped) and
    # dropped "loneliness"; the first node has the thumbnail.
    assert re.findall(r'<tspan class="pt-added">([^<]*)</tspan>', svg) == [
        "two",
        "old",
        "people,",
        "&lt;old&gt;",
    ]
    assert re.findall(r'<text class="pt-removed"[^>]*>([^<]*)</text>', svg) == ["− old loneliness"]
    assert svg.count("<image ") == 1 and 'href="/media/a.png"' in svg
    assert "Bob · proposed" in svg


def test_the_room_fetches_the_tree_and_outsiders_do_not(party, host, outsider, root):
    response = host.client.get(f"/api/parties/{party.code}/tree.svg")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert f'data-prompt="{root.pk}"' in response.content.decode()
    response = outsider.client.get(f"/api/parties/{party.code}/tree.svg")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_a_member")


def test_the_tree_is_drawn_at_the_width_asked_for(party, host, root):
    svg = host.client.get(f"/api/parties/{party.code}/tree.svg?width=640").content.decode()
    assert 'width="640"' in svg
    for width in ("199", "2001", "wide"):
        response = host.client.get(f"/api/parties/{party.code}/tree.svg?width={width}")
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_width")
