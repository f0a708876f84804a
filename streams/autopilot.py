"""Never silent for those watching: while a stream has viewers and nobody submits, the autopilot
renders prompts of its own at the stream's cadence, from the topic, the stream's vocabulary and
what viewers submitted before. A stream nobody watches renders nothing: its work would only
delay the renders people are waiting for."""

import asyncio
import logging
import random
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from core.db import with_fresh_connection
from partyhub.models import Render
from streams import viewers
from streams.models import AUTOPILOT_KEY, Stream, Submission

log = logging.getLogger(__name__)

TICK_SECONDS = 5

_loop = None


def compose(stream, rng=random):
    """A prompt for the stream: vocabulary words, sometimes over what a viewer once asked for.

    Never one the model's text encoder would cut: only words that fit alone are drawn, and the
    last ones are left out until the prompt, bound to the stream, fits. None when nothing fits
    (a template, topic and style that leave no room; the admin refuses those now).
    """
    words = [w.strip() for w in stream.vocabulary.splitlines() if w.strip()] or [stream.topic]
    words = [word for word in words if stream.fits(word)]
    if not words:
        return None
    picked = rng.sample(words, k=min(len(words), rng.choice([1, 2])))
    past = list(stream.submissions.order_by("-pk").values_list("text", flat=True)[:20])
    past = [text for text in past if stream.fits(text)]  # from before a change of model
    if past and rng.random() < 0.3:
        picked.insert(0, rng.choice(past))
    while len(picked) > 1 and not stream.fits(", ".join(picked)):
        picked.pop()
    return ", ".join(picked)


def is_due(stream, now):
    """Idle (nothing waiting, nothing rendering) and a cadence interval since the last render."""
    if stream.submissions.filter(status=Submission.Status.WAITING).exists():
        return False
    renders = Render.objects.filter(party_id=stream.party_id)
    if renders.unfinished().exists():
        return False
    last = renders.order_by("-queued_at").values_list("queued_at", flat=True).first()
    return last is None or now - last >= timedelta(seconds=60 / stream.cadence)


def tick(now=None, rng=random):
    """Queue one autopilot render for every watched active stream that is due; returns how
    many."""
    if not settings.PARTYHUB_AUTOPILOT:
        return 0
    now = now or timezone.now()
    started = 0
    for stream in Stream.objects.filter(active=True, cadence__gt=0):
        if viewers.count(stream.pk) == 0 or not is_due(stream, now):
            continue
        prompt = compose(stream, rng)
        if prompt is None:
            log.warning("autopilot: no word of %s fits its model's text encoder", stream.slug)
            continue
        stream.queue_render(AUTOPILOT_KEY, "autopilot", prompt)
        started += 1
    return started


def ensure_running():
    """In the embedded mode, tick on the server's event loop (Celery deployments use beat)."""
    global _loop
    loop = asyncio.get_running_loop()
    if loop is not _loop:
        _loop = loop
        loop.create_task(_run(), name="partyhub-autopilot")


async def _run():
    while True:
        await asyncio.sleep(TICK_SECONDS)
        try:
            await sync_to_async(with_fresh_connection, thread_sensitive=False)(tick)
        except Exception:
            log.exception("autopilot tick failed")
