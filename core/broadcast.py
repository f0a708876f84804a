"""Sending to channel-layer groups from synchronous code (views, actions, render workers).

Broadcasts are at-most-once: a lost message is recovered by the consumer from the archive, so a
failed send is logged and never undoes the database work that caused it.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def group_send(group, message):
    # Called from a thread that SyncToAsync started (a view, a consumer's database helper, the
    # embedded worker), async_to_sync runs the send on the server's event loop, where the
    # in-memory layer's queues live. In a Celery worker it runs on a private loop.
    try:
        async_to_sync(get_channel_layer().group_send)(group, message)
    except Exception:
        log.exception("broadcast to %s failed; clients will resync from the archive", group)


def group_send_on_commit(group, message):
    """Send only once the surrounding transaction has committed, never for a rolled-back one."""
    transaction.on_commit(lambda: group_send(group, message))
