"""`daphne partyhub.asgi:application`, the command deployments ran before the project moved to
config/ (2026-12-05), still finds the application. It lives in config/asgi.py; nothing else
imports this module."""

from config.asgi import application

__all__ = ["application"]
