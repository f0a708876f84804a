"""The home page: it offers both apps, a new party and the live streams, so it is the project's."""

from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from generation.presets import default_preset
from partyhub.models import Member
from partyhub.views import join_code_context
from streams.models import Stream

# A browser that has been to a great many parties still gets a short page.
MAX_JOINED_SHOWN = 50


@ensure_csrf_cookie
def home(request):
    joined = Member.objects.joined_by(request.session.session_key)[:MAX_JOINED_SHOWN]
    return render(
        request,
        "partyhub/home.html",
        {
            "default_model": default_preset(),
            "streams": Stream.objects.filter(active=True),
            "joined": joined,
            **join_code_context(),
        },
    )
