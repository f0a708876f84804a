"""How many viewers watch each stream, across every server process.

With REDIS_URL the count lives in Redis, so several Daphne processes add up; without it (the
embedded mode has one process) a counter in memory does. A process that dies without its
viewers disconnecting leaves their count behind until the key is reset.
"""

from collections import Counter

from django.conf import settings

_local = Counter()
_redis = None


def _client():
    global _redis
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(settings.REDIS_URL)
    return _redis


def _key(stream_id):
    return f"partyhub:stream:{stream_id}:viewers"


def change(stream_id, delta):
    """Add `delta` viewers; returns the new count."""
    if settings.REDIS_URL:
        return max(int(_client().incrby(_key(stream_id), delta)), 0)
    _local[stream_id] += delta
    return _local[stream_id]


def count(stream_id):
    if settings.REDIS_URL:
        return max(int(_client().get(_key(stream_id)) or 0), 0)
    return _local[stream_id]
