"""Handing committed renders to whichever worker this deployment runs."""

from django.conf import settings
from django.db import transaction


def enqueue_on_commit(render_id):
    transaction.on_commit(lambda: enqueue(render_id))


def enqueue(render_id):
    if settings.PARTYHUB_RENDER_WORKER == "celery":
        from generation.tasks import render

        render.delay(render_id)
    else:
        from generation import embedded

        embedded.wake()
