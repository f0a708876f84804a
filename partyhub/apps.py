from django.apps import AppConfig


class PartyhubConfig(AppConfig):
    name = "partyhub"
    verbose_name = "Parties"
