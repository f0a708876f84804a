"""A client message id makes prompt.submit and prompt.propose safe to send twice: a double click
on Render, or a bot retrying after a dropped connection, queues one render."""

import pytest
from channels.db import database_sync_to_async

from partyhub import actions
from partyhub.models import Event, Prompt, Render
from partyhub.models import party as party_models
from tests.conftest import receive_until

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"width": 64, "height": 64, "steps": 1}


def submit(member, client_id, text="a red circle", **fields):
    message = {"type": "prompt.submit", "text": text, "params": SMALL, **fields}
    if client_id is not None:
        message["client_id"] = client_id
    actions.handle(member.pk, message)


def test_it_queues_one_render_for_a_repeated_client_id(party, pm):
    submit(pm, "c0ffee-1")
    submit(pm, "c0ffee-1")
    submit(pm, "c0ffee-1", text="another text: still the same message")
    prompt = Prompt.objects.get()
    assert (prompt.client_id, Render.objects.count()) == ("c0ffee-1", 1)
    added = Event.objects.filter(party=party, type="prompt.added").get()
    assert added.payload["prompt"]["client_id"] == "c0ffee-1"
    assert Event.objects.filter(party=party, type="render.queued").count() == 1


def test_a_new_id_or_none_is_a_new_prompt(party, pm):
    submit(pm, "first")
    submit(pm, "second")
    submit(pm, None)
    submit(pm, None)
    assert list(Prompt.objects.order_by("pk").values_list("client_id", flat=True)) == [
        "first",
        "second",
        "",
        "",
    ]
    assert Render.objects.count() == 4
    # Without an id a prompt says so: null, as in every prompt object.
    assert Prompt.objects.order_by("pk").last().as_dict()["client_id"] is None


def test_ids_are_per_author(party, pm, member):
    submit(pm, "same")
    submit(member, "same")
    assert sorted(Prompt.objects.values_list("author", flat=True)) == sorted([pm.pk, member.pk])


def test_submit_returns_the_earlier_prompt_and_render_for_a_repeat(party, pm):
    prompt, render = party.submit_prompt(pm, "a star", params=SMALL, client_id="x")
    again, again_render = party.submit_prompt(pm, "a star", params=SMALL, client_id="x")
    assert (again.pk, again_render.pk) == (prompt.pk, render.pk)


@pytest.mark.parametrize(
    "client_id", ["", "a" * 65, "with space", "ü", "a/b", 5, True, ["x"], {"x": 1}]
)
def test_a_bad_id_is_refused_and_changes_nothing(party, pm, refused, client_id):
    message = {"type": "prompt.submit", "text": "a red circle", "client_id": client_id}
    assert refused(pm, message) == "invalid_client_id"
    assert refused(pm, {**message, "type": "prompt.propose"}) == "invalid_client_id"
    assert not Prompt.objects.exists()


def test_the_longest_id_and_every_allowed_character_are_taken(party, pm):
    longest = "Az09_-" * 10 + "abcd"
    submit(pm, longest)
    assert Prompt.objects.get().client_id == longest


def test_a_refused_message_leaves_its_id_free(party, pm, refused):
    message = {"type": "prompt.submit", "text": "x", "client_id": "k", "params": {"steps": 999}}
    assert refused(pm, message) == "invalid_param"
    submit(pm, "k")
    assert Prompt.objects.get().client_id == "k"


def test_a_repeat_costs_no_render_quota(party, pm, settings, refused):
    settings.PARTYHUB_PARTY_RENDERS_PER_MINUTE = 1
    submit(pm, "once")
    submit(pm, "once")  # not rate limited: nothing is rendered
    assert refused(pm, {"type": "prompt.submit", "text": "new", "client_id": "b"}) == (
        "rate_limited"
    )


def test_a_repeated_proposal_is_one_proposal(party, pm, member):
    party.set_steered(pm, True)
    for _ in range(2):
        actions.handle(
            member.pk, {"type": "prompt.propose", "text": "a blue star", "client_id": "p-1"}
        )
    proposal = Prompt.objects.get()
    assert (proposal.status, proposal.client_id) == (Prompt.Status.PROPOSED, "p-1")
    proposed = Event.objects.filter(party=party, type="prompt.proposed").get()
    assert proposed.payload["prompt"]["client_id"] == "p-1"
    # A submit with the proposal's id repeats it too: ids are the author's, whatever the type.
    party.set_steered(pm, False)
    submit(member, "p-1")
    assert Prompt.objects.count() == 1 and not Render.objects.exists()


def test_two_messages_with_one_id_at_the_same_moment_make_one_prompt(party, pm, monkeypatch):
    # The other connection's prompt lands between the look-up and the insert: the unique
    # constraint refuses the second, which then answers as a repeat.
    real = party_models.repeat_of
    calls = []

    def late(rows, author, client_id):
        calls.append(client_id)
        if len(calls) == 1:
            Prompt.objects.create(
                party=party, author=author, text="first", params={}, client_id=client_id
            )
            return None
        return real(rows, author, client_id)

    monkeypatch.setattr(party_models, "repeat_of", late)
    prompt, render = party.submit_prompt(pm, "second", params=SMALL, client_id="race")
    assert prompt.text == "first" and render is None
    assert Prompt.objects.count() == 1
    assert not Event.objects.filter(party=party, type="prompt.added").exists()


async def test_a_double_click_over_the_socket_sends_one_prompt_to_the_room(party, host, guest):
    ws_host = host.websocket(party.code, since=party.last_seq)
    ws_guest = guest.websocket(party.code, since=party.last_seq)
    for ws in (ws_host, ws_guest):
        assert (await ws.connect())[0]
    message = {"type": "prompt.submit", "text": "a red circle", "client_id": "dbl", "params": SMALL}
    await ws_host.send_json_to(message)
    await ws_host.send_json_to(message)
    for ws in (ws_host, ws_guest):
        frames = await receive_until(ws, "render.done", timeout=120)
        added = [f for f in frames if f["type"] == "prompt.added"]
        assert [f["prompt"]["client_id"] for f in added] == ["dbl"]
        assert not [f for f in frames if f["type"] == "error"]
        # Nothing more: no second prompt, no error frame for the repeat.
        assert await ws.receive_nothing(timeout=0.5)
    for ws in (ws_host, ws_guest):
        await ws.disconnect()
    assert await database_sync_to_async(Render.objects.count)() == 1


async def test_an_error_frame_names_the_client_id_of_the_message_it_refuses(party, host):
    """So a client that keeps a prompt until it is answered (to send it again after a reconnect)
    knows which one a refusal answers; an id that is not a well-formed one is never echoed."""
    ws = host.websocket(party.code, since=party.last_seq)
    assert (await ws.connect())[0]
    too_many_steps = {"type": "prompt.submit", "text": "a red circle", "params": {"steps": 999}}
    await ws.send_json_to({**too_many_steps, "client_id": "bad-1"})
    await ws.send_json_to({**too_many_steps, "type": "prompt.propose", "client_id": "bad-2"})
    await ws.send_json_to(too_many_steps)
    await ws.send_json_to({**too_many_steps, "client_id": "not an id"})
    await ws.send_json_to({"type": "vote", "image": 999999, "value": 1, "client_id": "x"})
    frames = [await ws.receive_json_from(timeout=10) for _ in range(5)]
    assert [(f["type"], f["code"], f.get("client_id")) for f in frames] == [
        ("error", "invalid_param", "bad-1"),
        ("error", "invalid_param", "bad-2"),
        ("error", "invalid_param", None),
        ("error", "invalid_client_id", None),
        ("error", "unknown_field", "x"),
    ]
    await ws.disconnect()
    assert not await database_sync_to_async(Prompt.objects.exists)()
