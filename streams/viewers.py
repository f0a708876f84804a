"""How many viewers watch each stream, across every server process.

Each open stream socket is one entry (its channel name) in core/open_sockets.py's stamped set
for the stream. A viewer's socket stamps it when it connects, its process's room for the stream
(streams/hub.py) stamps all of its viewers at once every STAMP_SECONDS while they stay, and the
socket removes its entry when it closes; a viewer whose process died stops counting once its
stamp is three periods old, so a stream is not rendered for ever for viewers long gone (the
autopilot renders only while someone watches).
"""

from core.open_sockets import OpenSockets

STAMP_SECONDS = 5  # also how often a viewer's page is told the count


def stale_seconds():
    return 3 * STAMP_SECONDS


_sockets = OpenSockets("stream", stale_seconds)


def stamp(stream_id, channel):
    """The viewer's socket is open now; returns how many watch."""
    _sockets.stamp(stream_id, channel)
    return count(stream_id)


def stamp_all(stream_id, channels):
    """These viewers' sockets are open now (one round trip); returns how many watch."""
    _sockets.stamp_many(stream_id, channels)
    return count(stream_id)


def leave(stream_id, channel):
    _sockets.leave(stream_id, channel)


def count(stream_id):
    return _sockets.count(stream_id)
