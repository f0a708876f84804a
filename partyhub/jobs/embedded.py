"""The render worker that runs inside the server process when no Celery is configured.

It is an asyncio task on the server's event loop that runs one render at a time in its own
thread. Running renders through `sync_to_async` matters: broadcasts made inside a render then
reach the in-memory channel layer on the loop that owns its queues. The database is the queue:
the worker takes the oldest queued render, so renders left over from a stopped server run too.
"""

import asyncio
import logging
from concurrent import futures

from asgiref.sync import sync_to_async

from core.db import with_fresh_connection
from generation.pipelines import warm_up
from partyhub.jobs.finisher import DaemonThread
from partyhub.jobs.runner import run_render
from partyhub.models import Render

log = logging.getLogger(__name__)

_loop = None
_wakeup = None
_recovered = False


# Daemon threads: a server that stops in the middle of a render must not wait for it (the render
# is requeued at the next start, see `_recover_orphans`).
_executor = DaemonThread("partyhub-render")


def ensure_running():
    """Start the worker on the running event loop, once per loop."""
    global _loop, _wakeup
    loop = asyncio.get_running_loop()
    if loop is _loop:
        return
    _loop, _wakeup = loop, asyncio.Event()
    loop.create_task(_serve(_wakeup), name="partyhub-embedded-worker")


def warm_up_now():
    """Start loading the default model and the scorer in the render thread at once, before any
    request starts the worker: the runserver command calls it as the server starts, so that a
    newcomer's first render finds them loaded. The worker's own warm-up then finds them cached."""
    _executor.submit(warm_up)


def wait_until_idle(timeout: float) -> bool:
    """Wait, at most ``timeout`` seconds, until the calls already handed to the worker's thread
    have run (a render, a look for the next one); True if they have. Such a call runs on after
    the event loop that handed it over has stopped. A server has one loop for its life; the
    tests run many, and wait for this before their database is flushed."""
    if not _executor.started:
        return True
    # The thread runs its calls in order: this one runs once all those before it have.
    last = _executor.submit(_nothing)
    return not futures.wait([last], timeout).not_done


def _nothing():
    pass


def wake():
    """Tell the worker a render was queued; safe from any thread."""
    loop, wakeup = _loop, _wakeup
    if loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(wakeup.set)


async def _serve(wakeup):
    global _recovered
    if not _recovered:
        _recovered = True
        await _in_thread(_recover_orphans)
        await _in_thread(warm_up)
    while True:
        if not await _in_thread(_render_next):
            await wakeup.wait()
            wakeup.clear()


def _render_next():
    """Run the oldest queued render; False when there is none."""
    render_id = Render.objects.next_queued_id()
    if render_id is None:
        return False
    try:
        # Finished here, not in a finisher thread as a Celery worker does: on one process's
        # CPU the overlap gains nothing (docs/performance.md), and a second thread tied to the
        # server's loop could wait for ever on a loop that stopped.
        run_render(render_id)
    except Exception:
        log.exception("embedded worker: render %s raised", render_id)
    return True


def _recover_orphans():
    # In embedded mode this process is the only worker: a render still `running` was cut off
    # when an earlier server process stopped. Requeue it; the attempts cap still applies.
    Render.objects.filter(status=Render.Status.RUNNING).update(status=Render.Status.QUEUED)


async def _in_thread(func, *args):
    call = sync_to_async(with_fresh_connection, thread_sensitive=False, executor=_executor)
    return await call(func, *args)
