"""Who is in the room: the members with a party socket open, across every server process.

Each open socket is one entry, "<member id> <channel name>", in core/open_sockets.py's stamped
set for the party, so several tabs of one member count once. A socket stamps its entry when it
connects and at every resync (PARTYHUB_RESYNC_SECONDS) and removes it when it closes; a member
whose sockets all died with their process goes offline once the stamps are three resyncs old.
"""

from django.conf import settings

from core.open_sockets import OpenSockets


def stale_seconds():
    """How long an entry counts without a fresh stamp: three resyncs, so one late resync (a
    busy process) does not take anyone offline."""
    return 3 * settings.PARTYHUB_RESYNC_SECONDS


_sockets = OpenSockets("party", stale_seconds)


def stamp(party_id, member_id, channel):
    """The socket is open now; returns the ids of the members online, sorted."""
    _sockets.stamp(party_id, f"{member_id} {channel}")
    return online(party_id)


def leave(party_id, member_id, channel):
    """The socket closed; returns the ids of the members online, sorted."""
    _sockets.leave(party_id, f"{member_id} {channel}")
    return online(party_id)


def online(party_id):
    """The ids of the members with a party socket open, sorted."""
    return sorted({int(entry.split(" ", 1)[0]) for entry in _sockets.entries(party_id)})
