from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"

    def ready(self):
        from generation import checks  # noqa: F401 - registers the system checks
