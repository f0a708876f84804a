"""Backpressure for WebSocket clients: those that read slower than the server sends, and those
that send faster than their consumer handles.

ASGI lets a server make `send` wait while a client is slow to read, and uvicorn does; Daphne
does not: it hands every frame to Twisted, which buffers it without bound. A viewer on a stalled
link would hold everything sent to it in the server's memory. Twisted's own remedy
is a streaming producer registered on the connection: Twisted pauses it when the connection's
write buffer passes its `bufferSize` and resumes it once the buffer has drained.

`BackpressureMiddleware` registers a `SendWindow` as that producer for each WebSocket and puts it
in the scope. While the window is shut, consumers send nothing that the client can get back from
the archive, and drop what is live only (progress previews); when it opens again they catch the
client up from the archive. A client that stops reading for good is dropped by Daphne's ping
timeout. So one stalled client costs the server at most one buffer's worth of memory
(`PARTYHUB_WS_SEND_BUFFER_BYTES`, larger than Twisted's 64 KiB so that a short stall of a
viewer in a busy room costs no trip to the database), and the others never wait for it.

The other way round, Daphne puts every frame a client sends into an unbounded queue for the
consumer, which handles one message at a time. `ReceiveBuffer` counts the bytes waiting there and
stops reading the client's socket past `PARTYHUB_WS_RECEIVE_BUFFER_BYTES`, until the consumer has
taken half of them: a flooding client's data then waits in its own TCP buffers, not the server's.
"""

import asyncio
import functools

from django.conf import settings

SCOPE_KEY = "partyhub.send_window"


class SendWindow:
    """Whether the client has room for more frames. Twisted calls the *Producing methods (its
    IPushProducer interface); `on_reopen` is called when a shut window opens again."""

    def __init__(self):
        self.shut = False
        self.on_reopen = None

    def pauseProducing(self):  # noqa: N802  (Twisted's names)
        self.shut = True

    def resumeProducing(self):  # noqa: N802
        self.shut = False
        if self.on_reopen is not None:
            self.on_reopen()

    def stopProducing(self):  # noqa: N802  (the connection is gone)
        self.shut = True


class BackpressureMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            transport = _transport(send)
            scope = {**scope, SCOPE_KEY: _registered_window(transport)}
            receive = ReceiveBuffer.around(receive, transport)
        return await self.app(scope, receive, send)


class ReceiveBuffer:
    """Pauses reading a connection while its unhandled messages hold more than `limit` bytes.

    Daphne's `receive` is the `get` of the connection's asyncio.Queue, which its protocol fills
    with `put_nowait`; both run on the event loop's thread, as this does."""

    def __init__(self, queue, transport, limit):
        self.queue, self.transport, self.limit = queue, transport, limit
        self.waiting = 0  # bytes of the messages in the queue
        self.paused = False
        put = queue.put_nowait

        def counted_put(message):
            put(message)
            self.waiting += _size(message)
            if self.waiting > self.limit and not self.paused:
                self.paused = True
                self.transport.pauseProducing()  # for a TCP transport: stop reading

        queue.put_nowait = counted_put

    @classmethod
    def around(cls, receive, transport):
        """`receive` bounded, where the server is Daphne; else `receive` as it is."""
        queue = getattr(receive, "__self__", None)
        if not isinstance(queue, asyncio.Queue) or not hasattr(transport, "pauseProducing"):
            return receive
        return cls(queue, transport, settings.PARTYHUB_WS_RECEIVE_BUFFER_BYTES).receive

    async def receive(self):
        message = await self.queue.get()
        self.waiting -= _size(message)
        if self.paused and self.waiting <= self.limit // 2:
            self.paused = False
            self.transport.resumeProducing()
        return message


def _size(message):
    return len(message.get("text") or message.get("bytes") or "")


def send_window(scope):
    """The connection's window; one that never shuts where the server applies backpressure in
    `send` itself, or in tests that talk to the application directly."""
    return scope.get(SCOPE_KEY) or SendWindow()


def _transport(send):
    """The Twisted transport under a Daphne connection, or None under another server. Daphne's
    `send` is functools.partial(server.handle_reply, protocol), the protocol being autobahn's
    WebSocket protocol on a Twisted transport."""
    protocol = send.args[0] if isinstance(send, functools.partial) and send.args else None
    return getattr(protocol, "transport", None)


def _registered_window(transport):
    window = SendWindow()
    if not hasattr(transport, "registerProducer"):
        return window
    # The connection began as HTTP: twisted.web's HTTPChannel registered itself as its
    # producer and stays registered after Daphne's upgrade, though it serves it no more.
    if transport.producer is not None:
        transport.unregisterProducer()
    transport.bufferSize = settings.PARTYHUB_WS_SEND_BUFFER_BYTES
    transport.registerProducer(window, True)
    return window
