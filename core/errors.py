from contextlib import contextmanager

from generation.errors import Refused


class ApiError(Exception):
    """A refused request: a stable machine-readable code, a sentence for people, an HTTP status.

    Raised by validation and actions before anything is written, so a refusal never leaves a
    request half-applied. Views turn it into `{"error": {...}}`, the consumer into an error frame.
    """

    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def as_dict(self):
        return {"code": self.code, "message": self.message}


class RateLimited(ApiError):
    """Too many requests from one person or address: 429, and when to try again."""

    def __init__(self, retry_after, what="requests"):
        super().__init__("rate_limited", f"Too many {what}; try again in {retry_after} s.", 429)
        self.retry_after = retry_after

    def as_dict(self):
        return {**super().as_dict(), "retry_after": self.retry_after}


# The engine's refusals that are not plain bad requests, and the status each one answers with.
REFUSAL_STATUS = {
    "unknown_image": 404,
    "unknown_upload": 404,
    "model_unavailable": 409,
    # As search's search_unavailable: asking again will not help until the server has a CLIP.
    "scoring_unavailable": 409,
}


@contextmanager
def engine_refusals(status=None):
    """Where web code asks the engine to check a request: the engine's `Refused` becomes an
    ApiError with its code and message, and the status its code calls for (or `status`)."""
    try:
        yield
    except Refused as refused:
        code = refused.code
        raise ApiError(code, refused.message, status or REFUSAL_STATUS.get(code, 400)) from None
