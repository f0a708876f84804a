"""A server process's room for a stream (streams/hub.py): one subscription to the channel layer
however many viewers it serves, each image offered to all of them once, and a viewer that was
busy catching up from the archive still sees every image once and in order."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from streams import hub
from streams.models import Stream
from tests.streams.test_streams import render_for, viewer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stream():
    return Stream.create(slug="rings", title="Rings", topic="rings of giant planets")


async def connected(slug, since=None):
    ws = viewer(slug, since)
    assert (await ws.connect())[0]
    assert (await ws.receive_json_from())["type"] == "stream.viewers"
    return ws


def group_members(group):
    return set(get_channel_layer().groups.get(group, {}))


async def test_many_viewers_in_a_process_are_one_member_of_the_group_and_all_see_each_image(
    stream,
):
    watchers = [await connected("rings") for _ in range(3)]
    members = group_members(stream.group)
    assert len(members) == 1 and next(iter(members)).startswith("stream-room.")
    image = await database_sync_to_async(render_for)(stream, "a thin ring")
    for ws in watchers:
        frame = await ws.receive_json_from(timeout=30)
        assert (frame["type"], frame["image"]["id"]) == ("stream.image", image.pk)
        assert await ws.receive_nothing()
    for ws in watchers:
        await ws.disconnect()
    await asyncio.sleep(0.1)  # the last one out closes the room, which leaves the group
    assert group_members(stream.group) == set()
    assert not [key for key in hub._rooms if key[1] == stream.group]


async def test_images_offered_while_a_viewer_catches_up_come_after_the_archive_once(
    stream, monkeypatch
):
    """A late viewer reading the archive (slowly, here) while two new images go live gets the
    archive's first, then the live ones, each once, in order."""
    from streams import consumers

    first = await database_sync_to_async(render_for)(stream, "a ring of ice")
    reading, release = asyncio.Event(), asyncio.Event()
    real = consumers._images_after

    async def slow_archive(stream_row, since):
        images = await real(stream_row, since)
        reading.set()
        await release.wait()
        return images

    monkeypatch.setattr(consumers, "_images_after", slow_archive)
    late = viewer("rings", since=0)
    connecting = asyncio.ensure_future(late.connect())
    await reading.wait()
    live = [await database_sync_to_async(render_for)(stream, f"ring {n}") for n in range(2)]
    release.set()
    assert (await connecting)[0]
    ids = []
    while len(ids) < 3:
        frame = await late.receive_json_from(timeout=30)
        if frame["type"] == "stream.image":
            ids.append(frame["image"]["id"])
    assert ids == [first.pk, *(image.pk for image in live)]
    assert not [f for f in await drain(late) if f["type"] == "stream.image"]
    await late.disconnect()


async def drain(ws):
    frames = []
    while not await ws.receive_nothing(timeout=0.3):
        frames.append(json.loads((await ws.receive_output())["text"]))
    return frames


async def test_the_room_hands_other_messages_to_each_viewer(stream):
    watchers = [await connected("rings") for _ in range(2)]
    await get_channel_layer().group_send(stream.group, {"type": "stream.hidden", "image": 7})
    for ws in watchers:
        assert await ws.receive_json_from(timeout=10) == {"type": "stream.hidden", "image": 7}
    for ws in watchers:
        await ws.disconnect()


async def test_a_viewer_that_fails_an_offer_costs_the_others_nothing(caplog):
    class Broken:
        def offer(self, message, frame):
            raise ConnectionError("gone")

    class Taking:
        def __init__(self):
            self.frames = []

        def offer(self, message, frame):
            self.frames.append(frame.text)

    room = hub.Room("stream.test-broken")
    taking = Taking()
    room.viewers.update({Broken(), taking})
    message = {"type": "stream.image", "image": {"id": 1}, "after": 0, "frame": '{"x": 1}'}
    room.deliver(message)
    assert taking.frames == ['{"x": 1}']
    assert "a viewer failed stream.image" in caplog.text
    room.close()
