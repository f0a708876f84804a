from celery import shared_task

from streams import autopilot


@shared_task(name="streams.autopilot")
def autopilot_tick():
    # Run by `celery beat` every few seconds (CELERY_BEAT_SCHEDULE); a no-op for busy streams.
    autopilot.tick()
