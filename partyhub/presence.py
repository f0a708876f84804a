"""Who is in the room: the members with a party socket open, across every server process.

Each open socket is one entry, (member, channel), stamped with the time it was last seen; a
member is online while any of their entries is fresher than `stale_seconds()`, so several tabs
of one member count once. A socket stamps its entry when it connects and at every resync
(PARTYHUB_RESYNC_SECONDS) and removes it when it closes; a process that dies without closing
its sockets takes their members offline once the entries go stale, instead of leaving them
online for ever (streams/viewers.py, which counts, cannot tell). Stamps are the processes'
own clocks: a skew of seconds between machines only shifts when a dead process's members go.

With REDIS_URL the entries live in one Redis sorted set per party (score: the stamp), so
several Daphne processes share them; without it (the embedded mode has one process) a dict in
memory holds them.
"""

import threading
import time

from django.conf import settings

_local = {}  # party id -> {(member id, channel name): stamp}
_lock = threading.Lock()  # sync_to_async may run these in more than one thread
_redis = None


def stale_seconds():
    """How long an entry counts without a fresh stamp: three resyncs, so one late resync (a
    busy process) does not take anyone offline."""
    return 3 * settings.PARTYHUB_RESYNC_SECONDS


def _client():
    global _redis
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(settings.REDIS_URL)
    return _redis


def _key(party_id):
    return f"partyhub:party:{party_id}:sockets"


def stamp(party_id, member_id, channel):
    """The socket is open now; returns the ids of the members online, sorted."""
    now = time.time()
    if settings.REDIS_URL:
        key = _key(party_id)
        pipe = _client().pipeline()
        pipe.zadd(key, {f"{member_id} {channel}": now})
        pipe.zremrangebyscore(key, "-inf", now - stale_seconds())
        # A party nobody has open any more leaves nothing behind.
        pipe.expire(key, int(2 * stale_seconds()) + 1)
        pipe.zrange(key, 0, -1)
        entries = pipe.execute()[-1]
        return _members(entry.decode() for entry in entries)
    with _lock:
        sockets = _local.setdefault(party_id, {})
        sockets[(member_id, channel)] = now
        return _online_locally(party_id, now)


def leave(party_id, member_id, channel):
    """The socket closed; returns the ids of the members online, sorted."""
    if settings.REDIS_URL:
        key = _key(party_id)
        pipe = _client().pipeline()
        pipe.zrem(key, f"{member_id} {channel}")
        pipe.zrangebyscore(key, time.time() - stale_seconds(), "+inf")
        return _members(entry.decode() for entry in pipe.execute()[-1])
    with _lock:
        sockets = _local.get(party_id, {})
        sockets.pop((member_id, channel), None)
        return _online_locally(party_id, time.time())


def online(party_id):
    """The ids of the members with a party socket open, sorted."""
    if settings.REDIS_URL:
        entries = _client().zrangebyscore(_key(party_id), time.time() - stale_seconds(), "+inf")
        return _members(entry.decode() for entry in entries)
    with _lock:
        return _online_locally(party_id, time.time())


def _online_locally(party_id, now):
    sockets = _local.get(party_id, {})
    for entry, seen in list(sockets.items()):
        if seen < now - stale_seconds():
            del sockets[entry]
    if not sockets:
        _local.pop(party_id, None)
    return sorted({member_id for member_id, _ in sockets})


def _members(entries):
    return sorted({int(entry.split(" ", 1)[0]) for entry in entries})
