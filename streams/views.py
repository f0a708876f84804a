from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render

from core.api import api, json_body
from core.errors import ApiError
from core.inbound import whole_number
from streams import viewers
from streams.models import Stream, image_message

PAGE_SIZE = 24


@api("GET")
def stream_list(request):
    return JsonResponse(
        [
            {
                "slug": stream.slug,
                "title": stream.title,
                "topic": stream.topic,
                "viewers": viewers.count(stream.pk),
            }
            for stream in Stream.objects.filter(active=True)
        ],
        safe=False,
    )


def watch(request, slug):
    """The stream, newest first; `?before=<image id>` pages back through its whole history."""
    stream = get_object_or_404(Stream, slug=slug, active=True)
    images = stream.images().order_by("-pk")
    before = request.GET.get("before", "")
    # Anything but an id (at most 18 digits) shows the newest page.
    if (before_id := whole_number(before, 10**18 - 1)) is not None:
        images = images.filter(pk__lt=before_id)
    page = [image_message(image)["image"] for image in images[: PAGE_SIZE + 1]]
    older = page[PAGE_SIZE - 1]["id"] if len(page) > PAGE_SIZE else None
    return render(
        request,
        "streams/watch.html",
        {
            "stream": stream,
            "images": page[:PAGE_SIZE],
            "older": older,
            "live": not before,  # an older page is history: it does not follow the stream
            "viewers": viewers.count(stream.pk),
        },
    )


@api("POST")
def submit_prompt(request, slug):
    stream = get_object_or_404(Stream, slug=slug, active=True)
    if not request.user.is_authenticated:
        raise ApiError("not_signed_in", "Sign in to submit prompts to a stream.", 401)
    submission, position = stream.submit(request.user, json_body(request).get("text"))
    return JsonResponse({"submission": submission.pk, "position": position}, status=202)


@api("POST")
def hide_image(request, slug, image_id):
    stream = get_object_or_404(Stream, slug=slug)
    if not request.user.is_staff:
        raise ApiError("forbidden", "Only staff hide images.", 403)
    stream.hide(image_id)
    return JsonResponse({"hidden": image_id})
