"""Backpressure for WebSocket clients that read slower than the server sends.

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
"""

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
            scope = {**scope, SCOPE_KEY: _registered_window(send)}
        return await self.app(scope, receive, send)


def send_window(scope):
    """The connection's window; one that never shuts where the server applies backpressure in
    `send` itself, or in tests that talk to the application directly."""
    return scope.get(SCOPE_KEY) or SendWindow()


def _registered_window(send):
    window = SendWindow()
    # Daphne's `send` is functools.partial(server.handle_reply, protocol), the protocol being
    # autobahn's WebSocket protocol on a Twisted transport.
    protocol = send.args[0] if isinstance(send, functools.partial) and send.args else None
    transport = getattr(protocol, "transport", None)
    if not hasattr(transport, "registerProducer"):
        return window
    # The connection began as HTTP: twisted.web's HTTPChannel registered itself as its
    # producer and stays registered after Daphne's upgrade, though it serves it no more.
    if transport.producer is not None:
        transport.unregisterProducer()
    transport.bufferSize = settings.PARTYHUB_WS_SEND_BUFFER_BYTES
    transport.registerProducer(window, True)
    return window
