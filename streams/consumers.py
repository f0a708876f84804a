import asyncio
import contextlib

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from core.inbound import OverBudget
from core.live import MALFORMED, LiveConsumer, query_since
from streams import viewers
from streams.models import Stream, image_message

CLOSE_BAD_REQUEST = 4400
CLOSE_NO_STREAM = 4404
CATCH_UP_LIMIT = 200  # a viewer back after a long absence gets the newest ones, not thousands


class StreamConsumer(LiveConsumer):
    """A viewer of a stream: anyone may watch, nobody sends. `since=<image id>` catches up on
    the images after that one, oldest first, before the live ones; none comes twice. A viewer
    who reads too slowly is sent nothing until its connection drains, then what it missed."""

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
        # Join before reading the archive: an image finished meanwhile comes live, and the
        # id check below drops its second copy.
        await self.channel_layer.group_add(self.group, self.channel_name)
        if since is not None:
            for message in await _images_after(stream, since):
                if self.window.shut:
                    break  # the rest comes when the connection drains
                await self._send_image(message)
        else:
            self.sent_id = await _latest_image_id(stream)
        self.shown_count = await sync_to_async(viewers.stamp)(self.stream_id, self.channel_name)
        await self.send_json({"type": "stream.viewers", "count": self.shown_count})
        self.counting = asyncio.create_task(self._follow_the_count())

    async def disconnect(self, close_code):
        if self.stream_id is None:
            return
        self.counting.cancel()
        await self.channel_layer.group_discard(self.group, self.channel_name)
        await sync_to_async(viewers.leave)(self.stream_id, self.channel_name)

    async def _follow_the_count(self):
        # Each viewer reads the count now and then instead of every join and leave being sent
        # to every viewer: that would be a message per viewer per viewer, and with a thousand
        # viewers arriving together, a storm. Reading it also keeps this viewer counted.
        while True:
            await asyncio.sleep(viewers.STAMP_SECONDS)
            count = await sync_to_async(viewers.stamp)(self.stream_id, self.channel_name)
            if count != self.shown_count and not self.window.shut:
                self.shown_count = count
                await self.send_json({"type": "stream.viewers", "count": count})

    async def receive(self, text_data=None, bytes_data=None):
        # Read-only: submissions go through the HTTP API, and what a viewer sends is ignored.
        # Anyone may connect, so it still counts against the connection's budget: a flood is
        # then not even read.
        with contextlib.suppress(OverBudget):
            self.charge(text_data, bytes_data)

    def connection_drained(self):
        if self.stream_id is not None:
            self.ask_self("stream.catch_up")

    async def stream_image(self, message):
        image_id = message["image"]["id"]
        if image_id <= self.sent_id or self.window.shut:
            return  # sent already, or sent after the connection drains
        if message.get("after", 0) > self.sent_id:
            # Missed at least one (lost by the channel layer, or held back while the viewer's
            # connection was full): fill from the database first, so the viewer still sees
            # every image once and in order.
            await self._send_images_before(image_id)
            if self.window.shut:
                return  # the catch-up brings this one too
        self.sent_id = image_id
        if "frame" in message:
            await self.send(text_data=message["frame"])
        else:
            await self.send_json({"type": message["type"], "image": message["image"]})

    async def stream_catch_up(self, message):
        await self._send_images_before(None)

    async def stream_hidden(self, message):
        # Sent even to a full connection: hides are rare and small, and the archive has no
        # record of them to catch a viewer up from.
        await self.send_json(message)

    async def _send_images_before(self, before):
        """The images after the last one sent, in order, until `before` or the window shuts."""
        while not self.window.shut:
            images = await _images_between(self.stream_id, self.sent_id, before)
            for image in images:
                if self.window.shut:
                    return
                await self._send_image(image)
            if len(images) < CATCH_UP_LIMIT:
                return

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
