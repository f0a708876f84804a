from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """The base of PartyHub's WebSocket consumers, which pass many small messages on."""

    async def dispatch(self, message):
        # Channels closes stale database connections before handling each message, a hop to a
        # worker thread every time: with a stream's images fanned out to a thousand viewers,
        # that hop took a quarter of the server's time. These consumers reach the database
        # only through database_sync_to_async, which closes stale connections itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
