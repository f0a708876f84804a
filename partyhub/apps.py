from django.apps import AppConfig


class PartyhubConfig(AppConfig):
    name = "partyhub"
    verbose_name = "Parties"

    def ready(self):
        # Connects the receiver that closes a session's party sockets when it logs out.
        from partyhub import consumers  # noqa: F401
