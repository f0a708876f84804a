"""A client that stops reading, against a real Daphne process over loopback and the Redis
channel layer: the server holds frames back instead of buffering them, the other clients go on
unhindered, and the stalled one catches up from the database once it reads again."""

import asyncio
import json
import socket

import pytest
import websockets
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from partyhub.jobs.watch import progress_message
from partyhub.models import Image, Member
from streams.models import Stream
from streams.signals import show_or_hide
from tests.faults.test_hostile_input import rss

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Real images get ids far apart, so that the unstored ones published between them fit in order.
FIRST, SECOND, THIRD = 10_000_000, 10_010_000, 10_020_000
FLOOD = 1000
LONG_TEXT = "x" * 32_000  # 1000 of these would be 32 MB buffered for the stalled viewer
# The reading viewer is never more than this many frames behind the publisher (about 256 KB,
# half the server's send window), however slow a loaded machine makes the test's own reading.
KEEPS_UP_WITHIN = 8


def stored_images(stream, ids):
    """Images of the stream in the database with the given ids (one render, one prompt)."""
    author, _ = Member.objects.get_or_create(
        party=stream.party, session_key="tester", defaults={"name": "tester"}
    )
    _, render = stream.party.submit_prompt(author, stream.bind("a moon"), params={"steps": 1})
    for index, pk in enumerate(ids):
        Image.objects.create(
            pk=pk,
            render=render,
            party=stream.party,
            index=index,
            file=f"m/{pk}.png",
            seed=pk,
            width=64,
            height=64,
        )


async def connect(port, path="/ws/streams/moons/?since=0", stalls=False, cookie=None):
    """A WebSocket client; one that `stalls` takes little into its socket and reads ahead by
    one frame only, so the server's own buffer fills as soon as the test stops reading it."""
    headers = {"Origin": f"http://127.0.0.1:{port}"}
    if cookie:
        headers["Cookie"] = cookie
    sock = socket.socket()
    if stalls:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # before it connects
    sock.connect(("127.0.0.1", port))
    return await websockets.connect(
        f"ws://127.0.0.1:{port}{path}",
        sock=sock,
        additional_headers=headers,
        max_size=2**20,
        max_queue=1 if stalls else 16,
    )


async def image_ids(ws, until, ids=None):
    """The ids of the `stream.image` frames received, up to and including `until` (appended to
    `ids` as they come, when given)."""
    ids = [] if ids is None else ids
    while not ids or ids[-1] != until:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
        if frame["type"] == "stream.image":
            ids.append(frame["image"]["id"])
    return ids


async def test_a_stalled_viewer_is_held_back_and_caught_up_while_another_keeps_up(daphne):
    stream = await database_sync_to_async(Stream.create)(
        slug="moons", title="Moons", topic="moons of giant planets"
    )
    await database_sync_to_async(stored_images)(stream, [FIRST])
    port = daphne()
    fast, stalled = await connect(port), await connect(port, stalls=True)
    # Both catch up from the start, so both have joined the stream's group once they have it.
    assert await image_ids(fast, FIRST) == [FIRST]
    assert await image_ids(stalled, FIRST) == [FIRST]

    # The stalled viewer stops reading while 32 MB of images go out that only live viewers get:
    # they are not in the database, so a catch-up cannot bring them. The other one reads on.
    layer = get_channel_layer()
    unstored = list(range(FIRST + 1, FIRST + 1 + FLOOD))
    read = []
    reading = asyncio.create_task(image_ids(fast, SECOND, read))
    for sent, (after, image_id) in enumerate(zip([FIRST, *unstored], unstored, strict=False)):
        await keeps_up(read, sent)
        message = {
            "type": "stream.image",
            "image": {"id": image_id, "url": "/m.png", "prompt": LONG_TEXT, "author": "a"},
        }
        await layer.group_send(
            stream.group, {**message, "after": after, "frame": json.dumps(message)}
        )
    await database_sync_to_async(stored_images)(stream, [SECOND])
    await database_sync_to_async(show_or_hide)(stream, [SECOND])
    # The viewer that reads gets every one, in order.
    assert await reading == [*unstored, SECOND]

    # The stalled one reads again: it gets the few written before its connection filled up,
    # then, caught up from the database, the stored image it missed; then the live ones.
    caught_up = await image_ids(stalled, SECOND)
    held_back = caught_up[:-1]
    assert held_back == unstored[: len(held_back)]
    assert len(held_back) < FLOOD / 4  # held back, not buffered in the server
    await database_sync_to_async(stored_images)(stream, [THIRD])
    await database_sync_to_async(show_or_hide)(stream, [THIRD])
    assert await image_ids(stalled, THIRD) == [THIRD]
    assert await image_ids(fast, THIRD) == [THIRD]
    await fast.close()
    await stalled.close()


async def keeps_up(received, sent):
    """Waits until the reading viewer has all but KEEPS_UP_WITHIN of the `sent` frames."""
    async with asyncio.timeout(60):
        while len(received) < sent - KEEPS_UP_WITHIN:
            await asyncio.sleep(0.001)


async def frames_until(ws, event_type, frames=None):
    frames = [] if frames is None else frames
    while not frames or frames[-1]["type"] != event_type:
        frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=60)))
    return frames


async def test_a_member_who_stops_reading_misses_progress_but_no_event(daphne, party, host, guest):
    port, server = daphne(with_process=True)
    path = f"/ws/parties/{party.code}/?since={party.last_seq}"
    reader = await connect(port, path, cookie=f"sessionid={host.session_key}")
    stalled = await connect(port, path, stalls=True, cookie=f"sessionid={guest.session_key}")
    # Both in the group: an archived event reaches both.
    await database_sync_to_async(party.join)("carol-session", "Carol")
    await frames_until(reader, "member.joined")
    await frames_until(stalled, "member.joined")

    # 32 MB of live progress previews, then an archived event, while one member does not read.
    layer = get_channel_layer()
    read = []
    before = rss(server.pid)
    reading = asyncio.create_task(frames_until(reader, "member.joined", read))
    for step in range(1, FLOOD + 1):
        await keeps_up(read, step - 1)
        await layer.group_send(party.group, progress_message(1, step, FLOOD, LONG_TEXT))
    await database_sync_to_async(party.join)("dave-session", "Dave")
    frames = await reading
    assert [f["step"] for f in frames[:-1]] == list(range(1, FLOOD + 1))
    assert frames[-1]["member"]["name"] == "Dave"
    # The server did not keep the 32 MB meant for the member who stopped reading.
    grown = rss(server.pid) - before
    print(f"server memory grew {grown / 2**20:.1f} MiB while 32 MiB went unread")
    assert grown < len(LONG_TEXT) * FLOOD / 2

    # The stalled member gets the progress written before its connection filled, not the rest,
    # and then the archived event, once, from the archive.
    frames = await frames_until(stalled, "member.joined")
    steps = [f["step"] for f in frames[:-1]]
    assert steps == list(range(1, len(steps) + 1))
    assert len(steps) < FLOOD / 4
    assert frames[-1]["member"]["name"] == "Dave"
    await database_sync_to_async(party.join)("erin-session", "Erin")
    for ws in (reader, stalled):
        assert [f["type"] for f in await frames_until(ws, "member.joined")] == ["member.joined"]
        await ws.close()
