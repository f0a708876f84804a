import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partyhub.settings")

app = Celery("partyhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Both apps define tasks: renders (generation) and the streams' autopilot (streams).
app.autodiscover_tasks(["generation", "streams"])
