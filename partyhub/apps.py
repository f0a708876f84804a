from django.apps import AppConfig


class PartyhubConfig(AppConfig):
    name = "partyhub"
    verbose_name = "Parties"

    def ready(self):
        # Connects the receivers for signing in and out (memberships, sockets), and the one that
        # hands each queued render to a worker.
        from partyhub import sessions  # noqa: F401
        from partyhub.jobs import dispatch  # noqa: F401
