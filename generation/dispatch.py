"""Handing committed renders to whichever worker this deployment runs."""

from django.conf import settings
from django.db import transaction


def enqueue_on_commit(render_id, queue=None):
    transaction.on_commit(lambda: enqueue(render_id, queue))


def enqueue(render_id, queue=None):
    """`queue` is the Celery queue: None for the default ("renders", parties), "streams" for
    streams, so workers can serve parties first (the embedded worker always does)."""
    if settings.PARTYHUB_RENDER_WORKER == "celery":
        from generation.tasks import render

        render.apply_async((render_id,), queue=queue)
    else:
        from generation import embedded

        embedded.wake()
