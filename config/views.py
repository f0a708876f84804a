"""The home page: it offers both apps, a new party and the live streams, so it is the project's."""

from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from generation.presets import default_preset
from streams.models import Stream


@ensure_csrf_cookie
def home(request):
    return render(
        request,
        "partyhub/home.html",
        {"default_model": default_preset(), "streams": Stream.objects.filter(active=True)},
    )
