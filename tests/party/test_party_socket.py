import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from config.asgi import application
from partyhub.consumers import (
    CLOSE_BAD_REQUEST,
    CLOSE_NO_PARTY,
    CLOSE_NOT_MEMBER,
    CLOSE_SIGNED_OUT,
)
from partyhub.models import Event, Image, Member, Prompt, Render
from tests.conftest import ORIGIN, receive_until


def host_headers(person):
    return [(b"cookie", f"sessionid={person.session_key}".encode()), (b"origin", ORIGIN)]


pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"width": 64, "height": 64, "steps": 2}


async def connect(person, code, **kwargs):
    communicator = person.websocket(code, **kwargs)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_it_renders_a_submitted_prompt_for_everyone(party, host, guest):
    ws_host = await connect(host, party.code, since=party.last_seq)
    ws_guest = await connect(guest, party.code, since=party.last_seq)

    await ws_guest.send_json_to(
        {"type": "prompt.submit", "text": "  two old people  ", "params": {**SMALL, "seed": 7}}
    )
    for ws in (ws_host, ws_guest):
        frames = await receive_until(ws, "render.done", timeout=120)
        archived = [f for f in frames if "seq" in f]
        assert [f["type"] for f in archived] == ["prompt.added", "render.queued", "render.done"]
        assert [f["seq"] for f in archived] == sorted({f["seq"] for f in archived})
        assert archived[0]["prompt"]["text"] == "two old people"
        assert archived[1]["render"]["position"] == 0
        assert any(f["type"] == "render.progress" for f in frames)
        done = archived[2]
        assert [(i["seed"], i["width"], i["height"]) for i in done["images"]] == [(7, 64, 64)]
    await ws_host.disconnect()
    await ws_guest.disconnect()

    render = await database_sync_to_async(Render.objects.get)()
    assert render.status == Render.Status.DONE
    assert render.attempts == 1
    assert await database_sync_to_async(Image.objects.filter(render=render).count)() == 1


async def test_it_replays_the_archive_after_since(party, host):
    ws = await connect(host, party.code, since=0)
    first = await ws.receive_json_from()
    second = await ws.receive_json_from()
    assert (first["seq"], second["seq"]) == (1, 2)  # the host joined, then the guest
    assert second == {**second, "type": "member.joined", "member": second["member"]}
    assert await ws.receive_nothing()
    await ws.disconnect()

    ws = await connect(host, party.code, since=1)
    assert (await ws.receive_json_from())["seq"] == 2
    assert await ws.receive_nothing()
    await ws.disconnect()


async def test_it_fills_a_gap_left_by_a_lost_broadcast(party, host, guest):
    ws = await connect(host, party.code, since=party.last_seq)
    guest_member = await database_sync_to_async(Member.objects.get)(session_key=guest.session_key)
    # Archive two events without broadcasting the first, as if the channel layer had dropped it.
    lost = await database_sync_to_async(Event.objects.create)(
        party=party, seq=3, type="association.added", payload={"association": {"id": 0}}
    )
    await database_sync_to_async(type(party).objects.filter(pk=party.pk).update)(last_seq=3)
    await database_sync_to_async(party.add_association)(guest_member, "empty chair")

    frames = [await ws.receive_json_from(), await ws.receive_json_from()]
    assert [f["seq"] for f in frames] == [lost.seq, 4]
    assert frames[1]["association"]["text"] == "empty chair"
    assert await ws.receive_nothing()
    await ws.disconnect()


async def test_a_lost_last_event_arrives_with_the_next_resync(party, host, settings):
    settings.PARTYHUB_RESYNC_SECONDS = 0.1
    ws = await connect(host, party.code, since=party.last_seq)
    # Archived but never broadcast, and no later event reveals the gap.
    await database_sync_to_async(Event.objects.create)(
        party=party, seq=3, type="association.added", payload={"association": {"id": 0}}
    )
    await database_sync_to_async(type(party).objects.filter(pk=party.pk).update)(last_seq=3)
    frame = await ws.receive_json_from(timeout=10)
    assert (frame["type"], frame["seq"]) == ("association.added", 3)
    await ws.disconnect()


async def test_a_join_code_works_in_any_case(party, host):
    ws = await connect(host, party.code.lower(), since=0)
    assert (await ws.receive_json_from())["seq"] == 1
    await ws.disconnect()


async def test_it_drops_an_event_it_already_sent(party, host):
    ws = await connect(host, party.code, since=0)
    await receive_until(ws, "member.joined")
    await receive_until(ws, "member.joined")
    event = await database_sync_to_async(Event.objects.get)(party=party, seq=2)
    await get_channel_layer().group_send(
        party.group, {"type": "party.event", "seq": event.seq, "frame": event.as_frame()}
    )
    assert await ws.receive_nothing()
    await ws.disconnect()


@pytest.mark.parametrize(
    "message, code",
    [
        ("not json", "invalid_json"),
        (json.dumps([1, 2]), "invalid_message"),
        (json.dumps({"type": "dance"}), "unknown_type"),
        (json.dumps({"type": "prompt.submit"}), "missing_field"),
        (json.dumps({"type": "prompt.submit", "text": "x", "colour": 1}), "unknown_field"),
        (json.dumps({"type": "prompt.submit", "text": "   "}), "invalid_prompt"),
        (json.dumps({"type": "prompt.submit", "text": "x" * 1001}), "invalid_prompt"),
        (json.dumps({"type": "prompt.submit", "text": "x", "parent": 999}), "unknown_prompt"),
        (json.dumps({"type": "prompt.submit", "text": "x", "parent": "1"}), "invalid_field"),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"size": 5}}),
            "unknown_param",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"width": 100}}),
            "invalid_param",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"width": 8}}),
            "invalid_param",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"steps": 0}}),
            "invalid_param",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"count": 9}}),
            "invalid_param",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"seed": 2**32}}),
            "invalid_param",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"seed": -1}}),
            "invalid_param",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"guidance": 99}}),
            "invalid_param",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"sampler": "Magic"}}),
            "invalid_param",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"sampler": ["Euler"]}}),
            "invalid_param",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"model": "dalle-9"}}),
            "unknown_model",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"model": None}}),
            "unknown_model",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"mode": "dream"}}),
            "unsupported_mode",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"mode": "img2img"}}),
            "invalid_param",
        ),
        (
            json.dumps(
                {
                    "type": "prompt.submit",
                    "text": "x",
                    "params": {"mode": "variation", "init_image": 9},
                }
            ),
            "unknown_image",
        ),
        (
            json.dumps({"type": "prompt.submit", "text": "x", "params": {"strength": 0.5}}),
            "invalid_param",
        ),
        (json.dumps({"type": "vote", "image": 12345, "value": 1}), "unknown_image"),
        (json.dumps({"type": "render.cancel", "render": True}), "invalid_field"),
        (json.dumps({"type": "association.add", "text": ""}), "invalid_association"),
        ("x" * (64 * 1024 + 1), "message_too_large"),
        (b"\x00binary", "invalid_message"),
    ],
)
async def test_it_refuses_a_bad_message_and_keeps_the_socket(party, host, message, code):
    ws = await connect(host, party.code, since=party.last_seq)
    if isinstance(message, bytes):
        await ws.send_to(bytes_data=message)
    else:
        await ws.send_to(text_data=message)
    frame = await ws.receive_json_from()
    assert frame["type"] == "error"
    assert frame["code"] == code
    assert frame["message"]
    # Nothing was archived or created, and the socket still works.
    assert await database_sync_to_async(Event.objects.filter(party=party).count)() == 2
    assert await database_sync_to_async(Prompt.objects.count)() == 0
    await ws.send_json_to({"type": "association.add", "text": "still here"})
    assert (await ws.receive_json_from())["type"] == "association.added"
    await ws.disconnect()


async def test_it_turns_away_an_outsider_before_joining_the_group(party, outsider):
    ws = outsider.websocket(party.code)
    connected, _ = await ws.connect()
    assert connected
    assert await ws.receive_output() == {"type": "websocket.close", "code": CLOSE_NOT_MEMBER}
    assert get_channel_layer().groups.get(party.group, {}) == {}


async def test_it_turns_away_an_unknown_party_and_a_bad_since(party, host):
    ws = host.websocket("NOPE99")
    await ws.connect()
    assert (await ws.receive_output())["code"] == CLOSE_NO_PARTY
    for since in ("-3", "x", str(party.last_seq + 1)):
        ws = host.websocket(party.code, since=since)
        await ws.connect()
        assert (await ws.receive_output())["code"] == CLOSE_BAD_REQUEST


@pytest.mark.parametrize(
    "code", ["nope99", "ABC%20DEF", "A" * 300, "..%2F..%2Fx", "%00", "ABCDEF%0Aparty-1", "ÄBCDEF"]
)
async def test_a_tampered_party_code_joins_no_group(party, host, code):
    layer = get_channel_layer()
    before = {group: set(channels) for group, channels in layer.groups.items()}
    ws = WebsocketCommunicator(application, f"/ws/parties/{code}/", headers=host_headers(host))
    try:
        connected, _ = await ws.connect()
    except ValueError:  # no route matches: refused before any consumer runs
        connected = False
    if connected:
        assert (await ws.receive_output())["code"] == CLOSE_NO_PARTY
    after = {group: set(channels) for group, channels in layer.groups.items()}
    assert all(after[group] <= before.get(group, set()) for group in after)


async def test_logging_out_closes_the_sessions_party_sockets(party, host, guest, settings):
    user = await User.objects.acreate(username="ann")
    await sync_to_async(host.client.force_login)(user)  # a new session key, as at any login
    host.session_key = host.client.cookies["sessionid"].value
    await database_sync_to_async(party.join)(host.session_key, "Ann")
    await party.arefresh_from_db()
    mine = host.websocket(party.code, since=party.last_seq)
    theirs = guest.websocket(party.code, since=party.last_seq)
    assert (await mine.connect())[0] and (await theirs.connect())[0]

    response = await sync_to_async(host.client.post)("/accounts/logout/")
    assert response.status_code == 302
    assert await mine.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": CLOSE_SIGNED_OUT,
    }
    assert await theirs.receive_nothing(0.5)  # another session's socket stays open
    await theirs.disconnect()


@pytest.mark.parametrize("origin", [b"http://evil.example", None])
async def test_it_refuses_a_cross_site_or_missing_origin(party, host, origin):
    ws = host.websocket(party.code, origin=origin)
    connected, _ = await ws.connect()
    assert not connected
    assert get_channel_layer().groups.get(party.group, {}) == {}


async def test_the_group_is_empty_after_everyone_leaves(party, host, guest):
    sockets = [await connect(host, party.code), await connect(guest, party.code)]
    assert len(get_channel_layer().groups[party.group]) == 2
    for ws in sockets:
        await ws.disconnect()
    assert not get_channel_layer().groups.get(party.group)


async def test_only_the_author_or_the_prompt_master_cancels(party, host, guest):
    host_member = await database_sync_to_async(Member.objects.get)(session_key=host.session_key)
    _, render = await database_sync_to_async(party.submit_prompt)(
        host_member, "a chair", None, SMALL
    )
    ws = await connect(guest, party.code, since=party.last_seq)
    await ws.send_json_to({"type": "render.cancel", "render": render.pk})
    frame = await receive_until(ws, "error")
    assert frame[-1]["code"] == "forbidden"
    await render.arefresh_from_db()
    assert not render.cancel_requested
    assert render.status != Render.Status.CANCELLED
    await ws.disconnect()
