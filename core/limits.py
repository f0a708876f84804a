"""Rate limits: how much one browser session or one address may ask of PartyHub in a window.

Counted by django-ratelimit in the cache (Redis in production, so every server process counts
together), in fixed windows: past the limit a request is refused with `rate_limited` and
`retry_after`, the seconds until its window ends. Streams count their submissions per account in
the database instead (streams.models), where they are rows anyway.
"""

import logging

from django.conf import settings
from django_ratelimit.core import get_usage

from core.errors import RateLimited

log = logging.getLogger(__name__)


def check(group, who, rate, what):
    """Counts one more request by `who` (a session key, an address) in `group`; raises
    RateLimited when that is over `rate` ("12/m", "30/h")."""
    try:
        usage = get_usage(None, group=group, key=lambda g, request: who, rate=rate, increment=True)
    except Exception as error:
        # The cache (Redis) is down: let the request through rather than refuse everyone; what
        # it asks for fails on its own if Redis is needed for it.
        log.warning("rate limit %s not checked, the cache failed: %s", group, error)
        return
    if usage is not None and usage["should_limit"]:
        raise RateLimited(max(1, usage["time_left"]), what)


def check_render(member):
    rate = f"{settings.PARTYHUB_PARTY_RENDERS_PER_MINUTE}/m"
    check("renders", member.session_key, rate, "renders")


def check_message(member):
    """Chat lines and comments, together, per browser session over all its parties."""
    rate = f"{settings.PARTYHUB_PARTY_MESSAGES_PER_MINUTE}/m"
    check("messages", member.session_key, rate, "messages")


def check_new_party(request):
    rate = f"{settings.PARTYHUB_NEW_PARTIES_PER_HOUR}/h"
    check("new-parties", address(request), rate, "new parties")


def check_upload(request):
    check("uploads", address(request), f"{settings.PARTYHUB_UPLOADS_PER_MINUTE}/m", "uploads")


def address(request):
    """The client's address: behind a proxy, Daphne's --proxy-headers has already put the
    forwarded one here."""
    return request.META.get("REMOTE_ADDR") or "unknown"
