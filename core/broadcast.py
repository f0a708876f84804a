"""Sending to channel-layer groups from synchronous code (views, actions, render workers).

Broadcasts are at-most-once: a lost message is recovered by the consumer from the archive, so a
failed send is logged and never undoes the database work that caused it.
"""

import asyncio
import logging
import os
import threading

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

_loop = None  # (event loop, pid): this process's own loop for sends no server loop waits on
_loop_lock = threading.Lock()


def group_send(group, message):
    try:
        layer = get_channel_layer()
        if _server_loop() is not None:
            # Called from a thread that SyncToAsync started (a view, a consumer's database
            # helper, the embedded worker): async_to_sync runs the send on the server's event
            # loop, where the in-memory layer's queues live.
            async_to_sync(layer.group_send)(group, message)
        else:
            # A Celery worker or a script: one long-lived loop, not async_to_sync's new thread
            # and new loop for every send (and channels_redis' connections are per loop).
            loop = _own_loop()
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result()
    except Exception:
        log.exception("broadcast to %s failed; clients will resync from the archive", group)


def group_send_on_commit(group, message):
    """Send only once the surrounding transaction has committed, never for a rolled-back one."""
    transaction.on_commit(lambda: group_send(group, message))


def _server_loop():
    # What async_to_sync itself looks for; a forked child's inherited one is not its own.
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    return getattr(SyncToAsync.threadlocal, "main_event_loop", None)


def _own_loop():
    global _loop
    with _loop_lock:
        if _loop is None or _loop[1] != os.getpid():  # none yet, or inherited through a fork
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="partyhub-broadcast")
            thread.daemon = True  # never keeps a worker from exiting
            thread.start()
            _loop = (loop, os.getpid())
        return _loop[0]
