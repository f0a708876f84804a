"""Which sockets are open, across every server process: who is in a party room
(partyhub/presence.py) and how many watch a stream (streams/viewers.py).

Each open socket is one entry in a named set, stamped with the time it was last seen. It
counts while its stamp is fresher than the set's `stale_seconds`, so a socket must stamp its
entry again now and then while it stays open; it removes its entry when it closes. A process
that dies without closing its sockets then takes them out of the count once their stamps go
stale, instead of leaving them counted for ever. Stamps are the processes' own clocks: a skew
of seconds between machines only shifts when a dead process's sockets stop counting.

With REDIS_URL the entries live in one Redis sorted set per key (score: the stamp), so several
Daphne processes share them; without it (the embedded mode has one process) a dict in memory
holds them.
"""

import threading
import time

from django.conf import settings

_redis = None


def _client():
    global _redis
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(settings.REDIS_URL)
    return _redis


class OpenSockets:
    """The open sockets of one kind (`name`), grouped by key (a party's id, a stream's id).

    `stale_seconds` is called at each use, so settings changed at run time (tests) apply.
    """

    def __init__(self, name, stale_seconds):
        self.name, self.stale_seconds = name, stale_seconds
        self._local = {}  # key -> {entry: stamp}
        self._lock = threading.Lock()  # sync_to_async may run these in more than one thread

    def _key(self, key):
        return f"partyhub:{self.name}:{key}:sockets"

    def stamp(self, key, entry):
        """The socket `entry` is open now."""
        self.stamp_many(key, [entry])

    def stamp_many(self, key, entries):
        """The sockets `entries` are open now: one round trip however many (a server process
        stamps all its viewers of a stream at once)."""
        now = time.time()
        if not entries:
            return
        if settings.REDIS_URL:
            redis_key = self._key(key)
            pipe = _client().pipeline()
            pipe.zadd(redis_key, dict.fromkeys(entries, now))
            pipe.zremrangebyscore(redis_key, "-inf", now - self.stale_seconds())
            # A key nobody has open any more leaves nothing behind.
            pipe.expire(redis_key, int(2 * self.stale_seconds()) + 1)
            pipe.execute()
            return
        with self._lock:
            self._local.setdefault(key, {}).update(dict.fromkeys(entries, now))

    def leave(self, key, entry):
        """The socket `entry` closed."""
        if settings.REDIS_URL:
            _client().zrem(self._key(key), entry)
            return
        with self._lock:
            self._local.get(key, {}).pop(entry, None)

    def entries(self, key):
        """The entries of the sockets open under `key`."""
        if settings.REDIS_URL:
            since = time.time() - self.stale_seconds()
            return [e.decode() for e in _client().zrangebyscore(self._key(key), since, "+inf")]
        with self._lock:
            return list(self._fresh_locally(key))

    def count(self, key):
        """How many sockets are open under `key`."""
        if settings.REDIS_URL:
            return _client().zcount(self._key(key), time.time() - self.stale_seconds(), "+inf")
        with self._lock:
            return len(self._fresh_locally(key))

    def _fresh_locally(self, key):
        sockets = self._local.get(key, {})
        oldest = time.time() - self.stale_seconds()
        for entry in [e for e, seen in sockets.items() if seen < oldest]:
            del sockets[entry]
        if not sockets:
            self._local.pop(key, None)
        return sockets
