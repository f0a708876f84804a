"""core/direct_send.py: a prepared frame goes out in one `send` where the connection is idle plain
TCP, and through Twisted's own buffered write otherwise, never out of order or in part."""

import socket

import pytest
from autobahn.websocket.protocol import PreparedMessage

from core.direct_send import send_now


class Transport:
    """The attributes of twisted.internet.tcp.Connection that send_now reads, on a real socket;
    what goes through `write` (Twisted's buffered path) is kept in order."""

    TLS = False
    connected, disconnecting, _writeDisconnected = True, False, False

    def __init__(self, sock):
        self.socket, self.dataBuffer, self._tempDataBuffer = sock, b"", []

    def write(self, data):
        self._tempDataBuffer.append(bytes(data))


class Protocol:
    _perMessageCompress = None

    def __init__(self, transport):
        self.transport, self.prepared = transport, []

    def sendPreparedMessage(self, frame):  # noqa: N802 (autobahn's name)
        self.prepared.append(frame)


def frame(text):
    return PreparedMessage(text.encode(), False, False, False)


def pair():
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    return ours, theirs


def test_an_idle_connection_gets_the_frame_in_one_send():
    ours, theirs = pair()
    protocol = Protocol(Transport(ours))
    message = frame('{"type": "stream.image"}')
    send_now(protocol, message)
    assert theirs.recv(1000) == message.payloadHybi
    assert protocol.transport._tempDataBuffer == [] and protocol.prepared == []


def test_bytes_already_waiting_keep_their_place():
    ours, theirs = pair()
    transport = Transport(ours)
    transport._tempDataBuffer.append(b"earlier")
    protocol = Protocol(transport)
    send_now(protocol, frame("later"))
    assert len(protocol.prepared) == 1  # left to Twisted, behind what waits
    theirs.setblocking(False)
    with pytest.raises(BlockingIOError):
        theirs.recv(100)  # nothing went out past the waiting bytes


def test_what_a_full_socket_does_not_take_goes_through_twisted_in_order():
    ours, theirs = pair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    transport = Transport(ours)
    protocol = Protocol(transport)
    message = frame("x" * 2_000_000)
    send_now(protocol, message)
    sent_at_once = b""
    theirs.setblocking(False)
    while True:
        try:
            chunk = theirs.recv(1 << 20)
        except BlockingIOError:
            break
        sent_at_once += chunk
    assert 0 < len(sent_at_once) < len(message.payloadHybi)
    assert sent_at_once + b"".join(transport._tempDataBuffer) == message.payloadHybi


def test_tls_and_compression_go_the_ordinary_way():
    ours, _ = pair()
    tls = Transport(ours)
    tls.TLS = True
    protocol = Protocol(tls)
    send_now(protocol, frame("a"))
    compressing = Protocol(Transport(ours))
    compressing._perMessageCompress = object()
    send_now(compressing, frame("b"))
    assert len(protocol.prepared) == len(compressing.prepared) == 1
