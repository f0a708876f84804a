"""Database work outside a request."""

from django.db import close_old_connections


def with_fresh_connection(func, *args):
    """`func(*args)` with the thread's database connection checked before and closed after if
    stale, as Django does around each request: the embedded worker's thread, the autopilot's and
    the Celery parent process live far longer than a connection may."""
    close_old_connections()
    try:
        return func(*args)
    finally:
        close_old_connections()
