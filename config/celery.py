import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("partyhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks: the render job (partyhub.jobs) and the streams' autopilot (streams).
app.autodiscover_tasks(["partyhub.jobs", "streams"])
