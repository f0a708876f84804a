"""Presence: who has the party room open. The server counts each member's open party sockets
(several tabs count once), tells sockets opened with `presence=1` who is online, and puts the
same list in the snapshot, so a reload or a reconnect shows the right people."""

import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from core import open_sockets
from partyhub import presence
from partyhub.models import Member
from tests.conftest import ORIGIN

pytestmark = pytest.mark.django_db(transaction=True)


def room_socket(person, party, presence_frames=True):
    query = f"?since={party.last_seq}" + ("&presence=1" if presence_frames else "")
    headers = [(b"cookie", f"sessionid={person.session_key}".encode()), (b"origin", ORIGIN)]
    return WebsocketCommunicator(application, f"/ws/parties/{party.code}/{query}", headers=headers)


async def open_room(person, party, presence_frames=True):
    ws = room_socket(person, party, presence_frames)
    connected, _ = await ws.connect()
    assert connected
    return ws


async def member_id(person):
    member = await database_sync_to_async(Member.objects.get)(session_key=person.session_key)
    return member.pk


async def online_frame(ws):
    frame = await ws.receive_json_from(timeout=5)
    assert frame["type"] == "presence"
    return frame["online"]


async def test_it_tells_the_room_who_comes_and_goes(party, host, guest):
    ann, bob = await member_id(host), await member_id(guest)
    ws_ann = await open_room(host, party)
    assert await online_frame(ws_ann) == [ann]

    ws_bob = await open_room(guest, party)
    assert await online_frame(ws_bob) == [ann, bob]  # on connecting: everyone online now
    assert await online_frame(ws_ann) == [ann, bob]

    await ws_bob.disconnect()
    assert await online_frame(ws_ann) == [ann]
    assert await ws_ann.receive_nothing()
    await ws_ann.disconnect()
    assert presence.online(party.pk) == []


async def test_several_tabs_of_one_member_count_once(party, host, guest):
    ann, bob = await member_id(host), await member_id(guest)
    ws_ann = await open_room(host, party)
    assert await online_frame(ws_ann) == [ann]
    tabs = [await open_room(guest, party), await open_room(guest, party)]
    assert await online_frame(ws_ann) == [ann, bob]
    assert await online_frame(tabs[1]) == [ann, bob]  # the second tab is told too
    assert await ws_ann.receive_nothing()  # ...and nobody else hears of it

    await tabs[0].disconnect()  # Bob still has the room open in the other tab
    assert await ws_ann.receive_nothing()
    assert presence.online(party.pk) == [ann, bob]
    await tabs[1].disconnect()
    assert await online_frame(ws_ann) == [ann]
    await ws_ann.disconnect()


async def test_the_snapshot_and_a_reconnect_show_who_is_online(party, host, guest):
    ann, bob = await member_id(host), await member_id(guest)
    ws_bob = await open_room(guest, party)
    await online_frame(ws_bob)
    snap = await database_sync_to_async(host.client.get)(f"/api/parties/{party.code}")
    assert snap.json()["online"] == [bob]  # Ann loads the room: Bob is there, she is not yet

    ws_ann = await open_room(host, party)
    assert await online_frame(ws_ann) == [ann, bob]
    assert await online_frame(ws_bob) == [ann, bob]
    await ws_ann.disconnect()  # a dropped connection...
    assert await online_frame(ws_bob) == [bob]
    ws_ann = await open_room(host, party)  # ...and the reconnect
    assert await online_frame(ws_ann) == [ann, bob]
    assert await online_frame(ws_bob) == [ann, bob]
    for ws in (ws_ann, ws_bob):
        await ws.disconnect()


async def test_clients_that_did_not_ask_get_no_presence_frames(party, host, guest):
    ann, bob = await member_id(host), await member_id(guest)
    ws_bot = await open_room(host, party, presence_frames=False)
    ws_bob = await open_room(guest, party)
    assert await online_frame(ws_bob) == [ann, bob]  # the bot counts as Ann being there...
    assert await ws_bot.receive_nothing()  # ...but is sent only the frames it always got
    await ws_bot.disconnect()
    assert await online_frame(ws_bob) == [bob]
    await ws_bob.disconnect()


async def test_a_removed_member_leaves_the_list(party, host, guest):
    ann, bob = await member_id(host), await member_id(guest)
    ws_ann = await open_room(host, party)
    ws_bob = await open_room(guest, party)
    assert await online_frame(ws_ann) == [ann]
    assert await online_frame(ws_ann) == [ann, bob]
    await ws_ann.send_json_to({"type": "member.remove", "member": bob})
    assert (await ws_ann.receive_json_from(timeout=5))["type"] == "member.removed"
    assert await online_frame(ws_ann) == [ann]
    await ws_ann.disconnect()
    await ws_bob.disconnect()


async def test_a_socket_of_a_dead_process_goes_stale(party, host, guest, settings, monkeypatch):
    """A process that died never closed its sockets: their members go offline once the
    entries are older than three resyncs, and the sockets still open say so at a resync."""
    settings.PARTYHUB_RESYNC_SECONDS = 0.2
    ann, bob = await member_id(host), await member_id(guest)
    ws_ann = await open_room(host, party)
    assert await online_frame(ws_ann) == [ann]
    presence.stamp(party.pk, bob, "a-channel-of-a-process-that-died")
    assert await online_frame(ws_ann) == [ann, bob]  # read again at Ann's next resync
    assert await online_frame(ws_ann) == [ann]  # Bob's entry, never stamped again, went stale
    await ws_ann.disconnect()


def test_it_counts_sockets_in_redis_across_processes(settings, redis_url, monkeypatch):
    """With REDIS_URL every Daphne process reads and writes the same entries."""
    settings.REDIS_URL = redis_url
    monkeypatch.setattr(open_sockets, "_redis", None)
    presence.stamp(7, 1, "process-a.channel-1")
    presence.stamp(7, 2, "process-b.channel-1")
    assert presence.stamp(7, 2, "process-b.channel-2") == [1, 2]  # Bob's second tab
    assert presence.leave(7, 2, "process-b.channel-1") == [1, 2]
    assert presence.leave(7, 2, "process-b.channel-2") == [1]
    assert presence.online(8) == []  # another party

    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + presence.stale_seconds() + 1)
    assert presence.online(7) == []  # the process holding Ann's socket died
    monkeypatch.setattr(open_sockets, "_redis", None)
