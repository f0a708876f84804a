import asyncio
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from core import inbound
from core.backpressure import receive_buffer, send_window

# `since` present but not a whole number of at least 0 (the consumers close with 4400).
MALFORMED = object()


def query_since(scope):
    """The `since` of a socket's query string: None when absent, the number, or MALFORMED."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("since")
    if not values:
        return None
    try:
        since = int(values[-1])
    except ValueError:
        return MALFORMED
    return since if since >= 0 else MALFORMED


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """The base of PartyHub's WebSocket consumers, which pass many small messages on.

    `self.window` says whether the client has room for more (core/backpressure.py),
    `self.charge` counts what the client sends against its budget (core/inbound.py);
    `connection_drained` is called when a full connection has room again.
    """

    async def websocket_connect(self, message):
        self.window = send_window(self.scope)
        self.inbound = receive_buffer(self.scope)
        self.budget = inbound.Budget(
            settings.PARTYHUB_WS_MESSAGES_PER_SECOND,
            settings.PARTYHUB_WS_MESSAGE_BURST,
            settings.PARTYHUB_WS_BYTES_PER_SECOND,
            settings.PARTYHUB_WS_BYTE_BURST,
        )
        self.window.on_reopen = self.connection_drained
        await super().websocket_connect(message)

    def connection_drained(self):
        pass

    def charge(self, text_data, bytes_data):
        """Counts a frame the client sent (its size, up to a message's most) against the
        connection's budget. Over it, raises inbound.OverBudget and reads nothing more from the
        client until the budget has room: what it sends meanwhile costs the server nothing."""
        size = len(text_data or bytes_data or "")
        try:
            self.budget.charge(min(size, inbound.MAX_MESSAGE_BYTES))
        except inbound.OverBudget as error:
            self.inbound.hold(error.wait)
            raise

    def ask_self(self, message_type):
        """Queue a message to this consumer: its handler then runs between the handlers of
        other messages, never beside one. Callable from plain code, such as Twisted's."""
        self.asked = asyncio.ensure_future(
            self.channel_layer.send(self.channel_name, {"type": message_type})
        )

    async def dispatch(self, message):
        # Channels closes stale database connections before handling each message, a hop to a
        # worker thread every time: with a stream's images fanned out to a thousand viewers,
        # that hop took a quarter of the server's time. These consumers reach the database
        # only through database_sync_to_async, which closes stale connections itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
