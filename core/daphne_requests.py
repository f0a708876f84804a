"""Daphne's HTTP requests, without Twisted parsing their bodies as forms.

Twisted's `Request` parses every POST body of a form or multipart type into `request.args` by
default, before Daphne hands the body to Django, which parses it again. Daphne never reads those
args: the parse only holds a second copy of every upload in memory, and a multipart body it
cannot parse (no boundary, cut short) is answered with a bare `400` and no body, before Django
and PartyHub's JSON errors are reached. Turned off here, Django alone reads the body.
"""

from daphne import http_protocol

_DaphneRequest = http_protocol.WebRequest


class WebRequest(_DaphneRequest):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)


def install():
    """Make Daphne build its requests with this class (`HTTPFactory.buildProtocol` looks the
    name up in its module for each connection). Called once, as the ASGI application loads."""
    http_protocol.WebRequest = WebRequest
