import asyncio
import contextlib

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from core.backpressure import daphne_protocol
from core.direct_send import send_now
from core.inbound import OverBudget
from core.live import MALFORMED, LiveConsumer, query_since
from streams import hub, viewers
from streams.models import Stream, image_message

CLOSE_BAD_REQUEST = 4400
CLOSE_NO_STREAM = 4404
CATCH_UP_LIMIT = 200  # a viewer back after a long absence gets the newest ones, not thousands


class StreamConsumer(LiveConsumer):
    """A viewer of a stream: anyone may watch, nobody sends. `since=<image id>` catches up on
    the images after that one, oldest first, before the live ones; none comes twice. A viewer
    who reads too slowly is sent nothing until its connection drains, then what it missed.

    Live images come from this process's room for the stream (streams/hub.py), which offers
    each to every viewer here: a viewer that can take it as it is writes the room's frame at
    once; one that missed an image, or whose connection is full, catches up from the archive."""

    async def connect(self):
        self.stream_id = None
        since = query_since(self.scope)
        stream = await _stream(self.scope["url_route"]["kwargs"]["slug"])
        await self.accept()
        if stream is None:
            return await self.close(code=CLOSE_NO_STREAM)
        if since is MALFORMED:
            return await self.close(code=CLOSE_BAD_REQUEST)
        self.stream_id, self.group, self.sent_id = stream.pk, stream.group, since or 0
        self.protocol = daphne_protocol(self.scope)
        self.shown_count = None  # until the count sent below, the room's counts wait
        # Join before reading the archive, holding what the room offers meanwhile: an image
        # finished meanwhile then comes once, after those before it.
        self.held = []
        await hub.join(self.stream_id, self.group, self)
        if since is None:
            # Read after joining: every image newer than this one the room offers (and holds).
            self.sent_id = await _latest_image_id(stream)
            self._send_held()
        else:
            for message in await _images_after(stream, since):
                if self.window.shut:
                    break  # the rest comes when the connection drains
                await self._send_image(message)
            await self._catch_up()
        self.shown_count = await sync_to_async(viewers.stamp)(self.stream_id, self.channel_name)
        await self.send_json({"type": "stream.viewers", "count": self.shown_count})

    async def disconnect(self, close_code):
        if self.stream_id is None:
            return
        hub.leave(self.group, self)
        await sync_to_async(viewers.leave)(self.stream_id, self.channel_name)

    def show_count(self, count):
        """How many watch, from this process's room every few seconds (each viewer is not told
        of every join and leave: with a thousand viewers arriving together, that would be a
        storm of a message per viewer per viewer)."""
        if self.shown_count not in (None, count) and not self.window.shut:
            self.shown_count = count
            asyncio.ensure_future(self.send_json({"type": "stream.viewers", "count": count}))

    async def receive(self, text_data=None, bytes_data=None):
        # Read-only: submissions go through the HTTP API, and what a viewer sends is ignored.
        # Anyone may connect, so it still counts against the connection's budget: a flood is
        # then not even read.
        with contextlib.suppress(OverBudget):
            self.charge(text_data, bytes_data)

    def offer(self, message, frame):
        """An image of the stream, from this process's room: written at once if it is the
        next one and the connection has room; else left to a catch-up from the archive."""
        if self.held is not None:
            self.held.append((message, frame))  # the catch-up running now sends it after
            return
        if message["image"]["id"] <= self.sent_id or self.window.shut:
            return  # sent already, or to be sent once the connection drains
        if message.get("after", 0) > self.sent_id:
            # Missed at least one (lost by the channel layer, or held back while the viewer's
            # connection was full): from the archive first, so the viewer still sees every
            # image once and in order.
            self._begin_catch_up([(message, frame)])
            return
        self._write(message, frame)

    def forward(self, message):
        """Any other message of the stream's group (stream.hidden), handled in turn."""
        asyncio.ensure_future(self.channel_layer.send(self.channel_name, message))

    def connection_drained(self):
        if self.stream_id is not None and self.held is None:
            self._begin_catch_up([])

    def _begin_catch_up(self, held):
        self.held = held
        self.ask_self("stream.catch_up")

    async def stream_catch_up(self, message):
        await self._catch_up()

    async def _catch_up(self):
        """The archive's images after the last one sent, in order, until none is left or the
        connection is full; then those the room offered meanwhile (`held`), newer than the
        last one sent, at once: with no await from the last look to the end, nothing the room
        offers slips in between."""
        try:
            while not self.window.shut:
                images = await _images_between(self.stream_id, self.sent_id, None)
                for image in images:
                    if self.window.shut:
                        break
                    await self._send_image(image)
                if len(images) < CATCH_UP_LIMIT:
                    break
            self._send_held()
        finally:
            self.held = None

    def _send_held(self):
        """The images the room offered while this viewer caught up, newer than the last one
        sent, in order, and from here on the room's offers as they come."""
        if not self.window.shut:  # else they come from the archive when it drains
            for message, frame in self.held:
                if message["image"]["id"] > self.sent_id:
                    self._write(message, frame)
        self.held = None

    def _write(self, message, frame):
        self.sent_id = message["image"]["id"]
        if self.protocol is None:  # not under Daphne (tests talk to the application directly)
            asyncio.ensure_future(self.send(text_data=frame.text))
        elif self.protocol.state == self.protocol.STATE_OPEN:
            send_now(self.protocol, frame.prepared(self.protocol))

    async def stream_hidden(self, message):
        # Sent even to a full connection: hides are rare and small, and the archive has no
        # record of them to catch a viewer up from.
        await self.send_json(message)

    async def _send_image(self, message):
        self.sent_id = message["image"]["id"]
        await self.send_json(message)


@database_sync_to_async
def _stream(slug):
    return Stream.objects.filter(slug=slug, active=True).first()


@database_sync_to_async
def _images_after(stream, since):
    images = stream.images().filter(pk__gt=since).order_by("-pk")[:CATCH_UP_LIMIT]
    return [image_message(image) for image in reversed(images)]


@database_sync_to_async
def _latest_image_id(stream):
    return stream.images().order_by("-pk").values_list("pk", flat=True).first() or 0


@database_sync_to_async
def _images_between(stream_id, after, before):
    images = Stream.objects.get(pk=stream_id).images().filter(pk__gt=after)
    if before is not None:
        images = images.filter(pk__lt=before)
    return [image_message(image) for image in images.order_by("pk")[:CATCH_UP_LIMIT]]
