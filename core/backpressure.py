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
taken half of them, and while the client is over its budget of messages (core/inbound.py):
a flooding client's data then waits in its own TCP buffers, not the server's, and costs the
server nothing until it may be handled.
"""

import asyncio
import functools

from django.conf import settings

SCOPE_KEY = "partyhub.send_window"
RECEIVE_KEY = "partyhub.receive_buffer"
PROTOCOL_KEY = "partyhub.protocol"


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
            protocol = _protocol(send)
            transport = getattr(protocol, "transport", None)
            buffer = ReceiveBuffer.around(receive, transport)
            scope = {
                **scope,
                SCOPE_KEY: _registered_window(transport),
                RECEIVE_KEY: buffer,
                PROTOCOL_KEY: protocol,
            }
            if buffer is not None:
                receive = buffer.receive
        return await self.app(scope, receive, send)


class ReceiveBuffer:
    """Pauses reading a connection while its unhandled messages hold more than `limit` bytes,
    and while its consumer holds it (`hold`, for a client over its budget).

    Daphne's `receive` is the `get` of the connection's asyncio.Queue, which its protocol fills
    with `put_nowait`; both run on the event loop's thread, as this does."""

    def __init__(self, queue, transport, limit):
        self.queue, self.transport, self.limit = queue, transport, limit
        self.waiting = 0  # bytes of the messages in the queue
        self.full = self.held = self.paused = False
        put = queue.put_nowait

        def counted_put(message):
            put(message)
            self.waiting += _size(message)
            if self.waiting > self.limit:
                self.full = True
                self._pause_or_resume()

        queue.put_nowait = counted_put

    @classmethod
    def around(cls, receive, transport):
        """A buffer around `receive` where the server is Daphne; else None."""
        queue = getattr(receive, "__self__", None)
        if not isinstance(queue, asyncio.Queue) or not hasattr(transport, "pauseProducing"):
            return None
        return cls(queue, transport, settings.PARTYHUB_WS_RECEIVE_BUFFER_BYTES)

    async def receive(self):
        message = await self.queue.get()
        self.waiting -= _size(message)
        if self.full and self.waiting <= self.limit // 2:
            self.full = False
            self._pause_or_resume()
        return message

    def hold(self, seconds):
        """Reads nothing more from the client for `seconds`: a client over its budget would only
        be refused meanwhile, so what it sends waits in its own buffers, costing the server
        nothing, until the budget has room again."""
        if not self.held:
            self.held = True
            self._pause_or_resume()
            asyncio.get_running_loop().call_later(seconds, self._release)

    def _release(self):
        self.held = False
        self._pause_or_resume()

    def _pause_or_resume(self):
        pause = self.full or self.held
        if pause != self.paused:
            self.paused = pause
            # For a TCP transport: stop or start reading the socket.
            (self.transport.pauseProducing if pause else self.transport.resumeProducing)()


class _NoBuffer:
    """Where the server is not Daphne (tests talking to the application directly)."""

    def hold(self, seconds):
        pass


def receive_buffer(scope):
    return scope.get(RECEIVE_KEY) or _NoBuffer()


def _size(message):
    return len(message.get("text") or message.get("bytes") or "")


def send_window(scope):
    """The connection's window; one that never shuts where the server applies backpressure in
    `send` itself, or in tests that talk to the application directly."""
    return scope.get(SCOPE_KEY) or SendWindow()


def daphne_protocol(scope):
    """The connection's autobahn WebSocket protocol under Daphne (what a stream's room writes
    its prepared frames to), or None under another server."""
    return scope.get(PROTOCOL_KEY)


def _protocol(send):
    """Daphne's `send` is functools.partial(server.handle_reply, protocol), the protocol being
    autobahn's WebSocket protocol on a Twisted transport; None under another server."""
    protocol = send.args[0] if isinstance(send, functools.partial) and send.args else None
    return protocol if hasattr(protocol, "sendPreparedMessage") else None


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
