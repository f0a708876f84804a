from django.apps import AppConfig


class StreamsConfig(AppConfig):
    # Themed live streams arrive in a later issue; the app exists so the layout is settled.
    name = "streams"
