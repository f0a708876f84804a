from celery import shared_task

from generation.render import run_render


@shared_task(name="generation.render")
def render(render_id):
    # A redelivered message means the previous worker died holding this render (acks_late with
    # reject_on_worker_lost), so its claim may be taken over; the attempts cap stops a poison job.
    redelivered = bool(render.request.delivery_info.get("redelivered"))
    run_render(render_id, takeover=redelivered)
