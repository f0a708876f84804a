"""Handing committed renders to whichever worker this deployment runs, and handing them again
when a worker stopped (the beat task `generation.requeue_lapsed`).

The party records a render and says so (`render_queued`); which worker hears of it, and on
which Celery queue, is decided here, so transport stays out of the party's models."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.dispatch import receiver
from kombu.exceptions import OperationalError

from core.errors import ApiError
from partyhub.jobs.tasks import render
from partyhub.models import Render
from partyhub.signals import render_queued

log = logging.getLogger(__name__)


@receiver(render_queued)
def enqueue_on_commit(sender, render, **kwargs):
    transaction.on_commit(lambda: enqueue(*Render.objects.filter(pk=render.pk).queues()[0]))


def enqueue(render_id, queue=None):
    """`queue` is the Celery queue (`RenderQuerySet.queues`): None for the default ("renders",
    parties), "streams" for streams, so workers can serve parties first (the embedded worker
    always does).

    When the broker cannot be reached (Celery has already retried the publish), the render ends
    `failed` with `queue_unavailable`, so the room sees what became of it, and ApiError tells
    whoever asked: nothing is left queued in the database that no worker will ever hear of."""
    if settings.PARTYHUB_RENDER_WORKER == "celery":
        try:
            render.apply_async((render_id,), queue=queue)
        except OperationalError as error:
            log.error("could not queue render %s: %s", render_id, error)
            Render.fail_unqueued(render_id)
            raise ApiError(
                "queue_unavailable",
                "The render queue cannot be reached just now; submit again in a moment.",
                503,
            ) from None
    else:
        from partyhub.jobs import embedded

        embedded.wake()


def requeue_lost():
    """Deliver again every queued render, once after the broker lost its messages (a Redis
    restarted without persistence). The cache lives in the same Redis, so a marker missing
    from it says the broker's queues went with it; set again, it stays until the next loss. A
    render delivered twice is claimed once; the extra message finds it taken and is dropped."""
    if not cache.add("partyhub:broker-epoch", 1, timeout=None):
        return 0
    queued = Render.objects.filter(status=Render.Status.QUEUED).queues()
    for render_id, queue in queued:
        enqueue(render_id, queue)
    if queued:
        log.warning("the broker was restarted: delivered %d queued renders again", len(queued))
    return len(queued)


@shared_task(name="generation.requeue_lapsed")
def requeue_lapsed():
    """Deliver again each render whose worker stopped renewing its lease (celery beat runs this
    every few seconds): the first worker to take the message takes the render over. After a
    broker restart, deliver the queued renders again too (`dispatch.requeue_lost`)."""
    requeue_lost()
    for render_id, queue in Render.objects.lapsed().queues():
        enqueue(render_id, queue)
