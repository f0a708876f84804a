"""Every answer under /api/ is JSON, errors included, whatever raised them and whatever DEBUG is.

The API's own refusals are `{"error": {...}}` already (core.api.api). What Django refuses before a
view runs (a body over its size limits, too many form fields, a multipart body it cannot parse:
in the CSRF check, say) or a route that does not exist would otherwise be an HTML page, and with
DEBUG=1 the debug page; a client of the protocol cannot read either.
"""

from http import HTTPStatus

from core.api import error_response
from core.errors import ApiError

CODES = {
    400: ("bad_request", "The request could not be read: too large or malformed."),
    404: ("not_found", "There is nothing at this address."),
    500: ("server_error", "The server failed to answer this request."),
}


class JsonErrorsForApi:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and response.get("Content-Type", "").split(";")[0] != "application/json"
        ):
            status = response.status_code
            code, message = CODES.get(status, (None, None))
            if code is None:
                code = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
                message = f"{HTTPStatus(status).phrase}."
            return error_response(ApiError(code, message, status))
        return response
