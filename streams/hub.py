"""Each server process's fan-out of a stream's images: one subscription per stream to the channel
layer, each frame built once, the same bytes written to every viewer of it in this process.

Before, every viewer's consumer was a member of the stream's group: each image was a queue put,
a wake-up, a new task, a msgpack decode, a dispatch and a JSON frame built anew, per viewer
(150–240 µs of server CPU for each delivery). Now the process's `Room` for the stream is the
group's only member here; it reads each image once and offers it to every local viewer
(`StreamConsumer.offer`), which writes the room's prepared WebSocket frame to its connection
when it can take it as it is (the next image, connection not full), and otherwise catches up
from the archive on its own, as before. Viewers, images and hides stay what the protocol says.
"""

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from streams import viewers

log = logging.getLogger(__name__)

_rooms = {}  # (event loop, group) -> Room


async def join(stream_id, group, viewer):
    """Make `viewer` one of the stream's viewers in this process: from now on it is offered
    every image of `group` (its `offer`), sent every other message (its `forward`), and told
    how many watch (its `show_count`)."""
    key = (asyncio.get_running_loop(), group)
    room = _rooms.get(key)
    if room is None:
        room = _rooms[key] = Room(group, stream_id)
    room.viewers.add(viewer)
    await room.ready


def leave(group, viewer):
    key = (asyncio.get_running_loop(), group)
    room = _rooms.get(key)
    if room is None:
        return
    room.viewers.discard(viewer)
    if not room.viewers:
        del _rooms[key]
        room.close()


class Room:
    """The stream's group member in this process, and the viewers it writes to."""

    def __init__(self, group, stream_id=None):
        self.group, self.stream_id, self.viewers = group, stream_id, set()
        self.layer = get_channel_layer()
        self.ready = asyncio.ensure_future(self._subscribe())
        self.reading = None
        self.counting = asyncio.ensure_future(self._count()) if stream_id is not None else None

    async def _count(self):
        # The room stamps all its viewers at once and reads the count once, every
        # STAMP_SECONDS, where each viewer stamping and reading on its own was 2,000 round trips
        # a second at 10,000 viewers. Each viewer is told the count when it changes.
        while True:
            await asyncio.sleep(viewers.STAMP_SECONDS)
            channels = [viewer.channel_name for viewer in self.viewers]
            try:
                count = await sync_to_async(viewers.stamp_all)(self.stream_id, channels)
            except Exception:
                log.exception("stream room %s could not count its viewers", self.group)
                continue
            for viewer in list(self.viewers):
                viewer.show_count(count)

    async def _subscribe(self):
        self.channel = await self.layer.new_channel("stream-room.")
        await self.layer.group_add(self.group, self.channel)
        self.reading = asyncio.ensure_future(self._read())

    async def _read(self):
        while True:
            self.deliver(await self.layer.receive(self.channel))

    def deliver(self, message):
        frame = Frame(message["frame"]) if message["type"] == "stream.image" else None
        for viewer in list(self.viewers):
            try:
                if frame is None:
                    viewer.forward(message)
                else:
                    viewer.offer(message, frame)
            except Exception:  # one viewer's broken connection never costs the others theirs
                log.exception("stream room %s: a viewer failed %s", self.group, message["type"])

    def close(self):
        if self.counting is not None:
            self.counting.cancel()
        asyncio.ensure_future(self._unsubscribe())

    async def _unsubscribe(self):
        try:
            await self.ready
        except Exception:
            return  # never subscribed
        self.reading.cancel()
        await self.layer.group_discard(self.group, self.channel)


class Frame:
    """One image's WebSocket frame, built once for all of a room's viewers (autobahn's prepared
    message: header and payload framed once), and its text for servers other than Daphne."""

    def __init__(self, text):
        self.text = text
        self._prepared = None

    def prepared(self, protocol):
        if self._prepared is None:
            self._prepared = protocol.factory.prepareMessage(self.text.encode())
        return self._prepared
