"""Writing a prepared WebSocket frame to a Daphne connection at once.

Twisted's `transport.write` never sends: it buffers the bytes, registers the socket for writing,
and on the loop's next turn sends them and unregisters it. Under a stream's fan-out that was
most of a server's CPU: a py-spy profile of a Daphne process serving 1000 viewers at 10 images a
second had 45% of its samples in registering, waking and unregistering (epoll modifications
included) and 16% in the `send` calls themselves. asyncio's own transports try the `send` first
and buffer only what the socket would not take; `send_now` does that for a plain TCP connection
with nothing waiting to be written, and leaves everything else to Twisted, unchanged: TLS, a
connection with bytes already buffered (their order is kept), one closing, and whatever part of
the frame the socket did not take (which then counts towards the connection's buffer, and so
towards its backpressure, core/backpressure.py).
"""


def send_now(protocol, frame):
    """Write `frame`'s bytes (an autobahn PreparedMessage) to the protocol's connection."""
    transport = protocol.transport
    data = frame.payloadHybi
    compressing = getattr(protocol, "_perMessageCompress", True) is not None
    if compressing or not _idle_plain_tcp(transport):
        protocol.sendPreparedMessage(frame)  # Twisted's and autobahn's own way
        return
    try:
        sent = transport.socket.send(data)
    except BlockingIOError:
        sent = 0
    except OSError:  # a broken connection: Twisted finds out and closes it, as it would have
        transport.write(data)
        return
    if sent < len(data):
        transport.write(data[sent:])


def _idle_plain_tcp(transport):
    # Attributes of twisted.internet.tcp.Connection; where one is missing (another transport,
    # another Twisted), the frame goes the ordinary way.
    return (
        getattr(transport, "TLS", True) is False
        and getattr(transport, "connected", False)
        and not getattr(transport, "disconnecting", True)
        and not getattr(transport, "_writeDisconnected", True)
        and not getattr(transport, "dataBuffer", True)
        and not getattr(transport, "_tempDataBuffer", True)
        and hasattr(transport, "socket")
    )
