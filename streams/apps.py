from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "streams"

    def ready(self):
        from streams import signals  # noqa: F401  (connects the receivers)
