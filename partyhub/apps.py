from django.apps import AppConfig


class PartyhubConfig(AppConfig):
    name = "partyhub"
    verbose_name = "Parties"

    def ready(self):
        # Connects the receivers for signing in and out (memberships, sockets).
        from partyhub import sessions  # noqa: F401
