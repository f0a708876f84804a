"""`celery -A partyhub ...`, the command deployments run (see the README), finds the project's
Celery app here. It lives in config/celery.py; nothing else imports this module."""

from config.celery import app

__all__ = ["app"]
