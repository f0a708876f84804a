"""`manage.py runserver` (what `make run` runs) as Daphne serves it, and with the embedded worker
the default model and the CLIP scorer start loading as the server starts. Otherwise the first
request would start them, and a newcomer quick to press Render waited about 5 s more for the
first image (bench/first_render.py, docs/performance.md)."""

from daphne.management.commands.runserver import Command as DaphneRunserver
from django.conf import settings


class Command(DaphneRunserver):
    def inner_run(self, *args, **options):
        if settings.PARTYHUB_RENDER_WORKER == "embedded":
            from partyhub.jobs import embedded

            embedded.warm_up_now()
        super().inner_run(*args, **options)
