"""What every JSON endpoint shares: the method check, refusals as `{"error": {...}}`, the body
read as one JSON object, and the public address of a path."""

import functools

from django.conf import settings
from django.http import Http404, JsonResponse
from django.http.request import RawPostDataException

from core import inbound
from core.errors import ApiError, RateLimited


def api(*methods):
    """A JSON endpoint: other methods get 405, ApiError becomes `{"error": {...}}`."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                if request.method not in methods:
                    raise ApiError("method_not_allowed", f"Use {' or '.join(methods)}.", 405)
                return view(request, *args, **kwargs)
            except ApiError as error:
                return error_response(error)
            except Http404:
                return error_response(ApiError("not_found", "No such party.", 404))

        return wrapper

    return decorate


def error_response(error):
    response = JsonResponse({"error": error.as_dict()}, status=error.status)
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


def csrf_failure(request, reason=""):
    return error_response(
        ApiError("csrf_failed", "Send the csrftoken cookie's value as X-CSRFToken.", 403)
    )


def json_body(request):
    """The request's JSON object, parsed and checked once for every endpoint (inbound.py)."""
    try:
        data = request.body
    except RawPostDataException:  # a form body, already read as one (by the CSRF check)
        raise ApiError("invalid_json", "The request body must be JSON, not a form.") from None
    body = inbound.parse_json(data or b"{}")
    if not isinstance(body, dict):
        raise ApiError("invalid_json", "The request body must be a JSON object.")
    return body


def public_url(request, path):
    """The absolute URL of `path` as people reach this server: PARTYHUB_PUBLIC_URL if set,
    else the request's own scheme and host."""
    if settings.PARTYHUB_PUBLIC_URL:
        return settings.PARTYHUB_PUBLIC_URL + path
    return request.build_absolute_uri(path)
