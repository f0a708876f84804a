"""Search endpoints: one party's images, every published gallery's, and the /search/ page.
The search itself is partyhub/search.py."""

from django.http import JsonResponse
from django.shortcuts import render

from core.api import api
from generation import scoring
from partyhub import search
from partyhub.views import get_party_for_member


@api("GET")
def party_search(request, code):
    """Same access rule as the snapshot: members, or anyone for a public party."""
    party, _ = get_party_for_member(request, code)
    return JsonResponse(_answer(search.party_images(party), request.GET))


@api("GET")
def gallery_search(request):
    return JsonResponse(_answer(search.published_images(), request.GET))


def _answer(images, params):
    answer = search.search(images, search.parse(params))
    # After the search: a first search by meaning may have just found the model broken.
    return {**answer, "clip": scoring.is_configured()}


def search_page(request):
    # The offline CLIP knows only its world's words: an example it can answer.
    example = "a pink star" if scoring.vocabulary() else "an empty chair"
    return render(
        request, "partyhub/search.html", {"clip": scoring.is_configured(), "example": example}
    )
