"""A Celery worker's second thread: a batch's images are encoded, stored and recorded here while
the rendering thread claims and runs the next batch, so that a GPU never waits for them.

A render stays `running`, under the lease its batch renewed, until the finisher completes it.
Should the process die before that, the lease lapses and `generation.requeue_lapsed` gives the
render to another run, as for a worker that died mid-render.
"""

import logging
import os
import queue
import threading
from concurrent.futures import Executor, Future

from core.db import with_fresh_connection

log = logging.getLogger(__name__)


class DaemonThread(Executor):
    """Runs calls one at a time, in order, in one daemon thread of this process. A process that
    stops must not wait for a call in it: a ThreadPoolExecutor's threads are joined at exit, and
    one whose render was sending a broadcast to a stopped loop waited for it forever. Started
    at the first call, so a process forked before then (a Celery pool's child) starts its own."""

    def __init__(self, name):
        self._name, self._calls, self._thread, self._pid = name, queue.SimpleQueue(), None, None

    @property
    def started(self) -> bool:
        """Whether this process's thread has started: something was handed to it."""
        return self._thread is not None and self._pid == os.getpid()

    def submit(self, fn, /, *args, **kwargs):
        if not self.started:
            self._calls, self._pid = queue.SimpleQueue(), os.getpid()
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        future = Future()
        self._calls.put((future, fn, args, kwargs))
        return future

    def _run(self):
        while True:
            future, fn, args, kwargs = self._calls.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)


class Finisher:
    """Finishes one batch at a time beside the rendering thread. Handing over a batch first waits
    for the one before it, so at most two batches' images are in memory (at 32 images of 512×512,
    25 MB each) and the rendering thread slows to the finisher's pace rather than run ahead."""

    def __init__(self, submit=None):
        # `submit(fn, *args)` -> a concurrent Future: by default a daemon thread of its own.
        self._submit = submit or DaemonThread("partyhub-finish").submit
        self._finishing = None  # (render ids, future) of the batch handed over last

    def hand_over(self, render_ids, finish):
        """Run `finish()` in the finisher's thread once the batch before is finished."""
        self.wait()
        future = self._submit(with_fresh_connection, self._logged, finish, render_ids)
        self._finishing = (frozenset(render_ids), future)

    def holds(self, render_id):
        """Whether the render is in the batch being finished (its images made, not recorded)."""
        return self._finishing is not None and render_id in self._finishing[0]

    def wait(self):
        """Until the batch handed over last is finished (recorded, or its failure logged)."""
        finishing, self._finishing = self._finishing, None
        if finishing is not None:
            finishing[1].result()

    @staticmethod
    def _logged(finish, render_ids):
        try:
            finish()
        except Exception:
            # The renders stay `running` until their lease lapses and they are given again.
            log.exception("finishing renders %s failed", sorted(render_ids))
