"""Publishing: the Prompt Master puts the party's read-only gallery up at /g/<code>/ (or takes
it down), and anyone may look at it there while it is up."""

from django.core.files.storage import default_storage
from django.http import JsonResponse
from django.shortcuts import render
from django.templatetags.static import static

from core.api import api, json_body, public_url
from core.errors import ApiError
from partyhub import export
from partyhub.models import Party
from partyhub.snapshot import consistent_reads
from partyhub.views import get_party_for_member, no_party

DESCRIPTION_LENGTH = 200


def gallery_path(party):
    return f"/g/{party.code}/"


@api("POST")
def publish(request, code):
    party, member = get_party_for_member(request, code)
    if member is None:  # a public party is readable by all, but only its members act on it
        raise ApiError("not_a_member", "Join the party first.", 403)
    body = json_body(request)
    if "published" not in body:
        raise ApiError("invalid_published", "published must be true or false.")
    party.set_published(member, body["published"])
    published = party.published_at is not None
    return JsonResponse(
        {
            "published": published,
            "published_at": party.published_at.isoformat() if published else None,
            "url": public_url(request, gallery_path(party)) if published else None,
        }
    )


def gallery(request, code):
    """The public gallery: the same publication as the export's index.html, images by URL."""
    party = Party.objects.by_code(code).first()
    if party is None:
        return no_party(request, code)
    if party.published_at is None:
        # A 404 that says why, not Django's page (`make run` runs with DEBUG=1).
        context = {"code": party.code, "room": party.get_absolute_url()}
        return render(request, "partyhub/gallery_unpublished.html", context, status=404)
    with consistent_reads():
        # Images a moderator hid stay out of the public page.
        manifest = export.build_manifest(party, include_hidden=False)
    urls = {
        image["id"]: default_storage.url(image.pop("stored_as")) for image in manifest["images"]
    }
    page = export.publication(manifest, url_of=lambda image: urls[image["id"]])
    cover = page["cover"]
    return render(
        request,
        "partyhub/gallery.html",
        {
            **page,
            "og": {
                "title": page["title"],
                "description": _description(page),
                "image": _absolute(request, cover["url"]) if cover else None,
                "image_alt": cover["line"] if cover else None,
                "url": public_url(request, gallery_path(party)),
            },
            "replay_js": static("partyhub/replay.js"),
        },
    )


def _absolute(request, url):
    """og:image must be an absolute URL (a storage on S3 gives one already)."""
    return url if "://" in url else public_url(request, url)


def _description(page):
    party = page["party"]
    people = len(page["members"])
    text = (
        f"A neurogenerative party on “{party['topic']}”: {people} "
        f"{'person' if people == 1 else 'people'}, {len(page['images'])} images"
    )
    if page["picks"]:
        first = page["picks"][0]
        text += f", {len(page['picks'])} picked"
        if first["note"]:
            text += f". “{first['note']}”"
    text += "."
    if len(text) > DESCRIPTION_LENGTH:
        text = text[: DESCRIPTION_LENGTH - 1].rstrip() + "…"
    return text
