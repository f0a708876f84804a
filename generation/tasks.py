from celery import shared_task

from generation.render import run_render

# While a render runs in another worker's batch, its own message comes back this often, so
# that if that worker dies the render's lease runs out and this message takes it over.
BUSY_RETRY_SECONDS = 30


@shared_task(name="generation.render", bind=True, max_retries=None)
def render(self, render_id):
    # A redelivered message means the previous worker died holding this render (acks_late with
    # reject_on_worker_lost), so its claim may be taken over; the attempts cap stops a poison job.
    redelivered = bool(self.request.delivery_info.get("redelivered"))
    if not run_render(render_id, takeover=redelivered):
        raise self.retry(countdown=BUSY_RETRY_SECONDS)
