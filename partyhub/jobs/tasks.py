from billiard.exceptions import WorkerLostError
from celery import Task, shared_task
from celery.signals import worker_process_shutdown, worker_shutdown
from celery.worker.request import Request

from core.db import with_fresh_connection
from partyhub.jobs.finisher import Finisher
from partyhub.jobs.runner import run_render
from partyhub.models import Render

# While a render runs in another worker's batch, its own message comes back this often, so
# that if that worker stalls the render's lease runs out and this message takes it over.
BUSY_RETRY_SECONDS = 30

# Stores and records each batch while the process's next task renders the next one.
finisher = Finisher()


@worker_process_shutdown.connect  # a prefork pool's process, before it exits
@worker_shutdown.connect  # the worker itself (the solo and threads pools render in it)
def _finish_before_exit(**kwargs):
    finisher.wait()


class RenderRequest(Request):
    """A render's message as the worker's parent process handles it. The parent outlives the
    pool process that runs the render, so it is the one that can tell the database what
    became of a render whose process died (SIGKILL, out of memory, the hard time limit)."""

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = getattr(exc_info.exception, "exc", exc_info.exception)  # ExceptionWithTraceback
        if isinstance(exc, WorkerLostError):
            # Before Celery requeues the message, so its next delivery finds the lease ended.
            with_fresh_connection(Render.worker_lost, self.args[0])
        return super().on_failure(exc_info, send_failed_event, return_ok)

    def on_timeout(self, soft, timeout):
        if not soft:  # the pool process is being replaced: the render ends now, not retried
            with_fresh_connection(Render.hard_time_limit_exceeded, self.args[0])
        return super().on_timeout(soft, timeout)


class RenderTask(Task):
    Request = RenderRequest


@shared_task(name="generation.render", base=RenderTask, bind=True, max_retries=None)
def render(self, render_id):
    if not run_render(render_id, finisher):
        raise self.retry(countdown=BUSY_RETRY_SECONDS)
