"""What signing in and out does to a browser's parties.

Party membership belongs to the browser session (`Member.session_key`), account or not. Django
gives a session a new key when someone signs in, to foil session fixation; the memberships move
to the new key with it, so signing up to feed a stream never loses anyone their party. Signing
out ends the session: its party sockets are closed (4401) and stop acting for it.
"""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from core.broadcast import group_send
from partyhub.consumers import session_group
from partyhub.models import Member

# Inside the session's data, which survives the new key at sign-in: the key memberships use.
MEMBERSHIP_KEY = "partyhub_membership_key"


def membership_key(request):
    """The key this browser's party memberships are stored under; the session is created if
    there is none yet."""
    if not request.session.session_key:
        request.session.create()
    request.session[MEMBERSHIP_KEY] = request.session.session_key
    return request.session.session_key


@receiver(user_logged_in)
def move_memberships_to_the_new_key(sender, request, **kwargs):
    old, new = request.session.get(MEMBERSHIP_KEY), request.session.session_key
    if old and new and old != new:
        Member.objects.filter(session_key=old).update(session_key=new)
        request.session[MEMBERSHIP_KEY] = new


@receiver(user_logged_out)
def close_the_sessions_sockets(sender, request, **kwargs):
    if request is not None and request.session.session_key:
        group_send(session_group(request.session.session_key), {"type": "session.ended"})
