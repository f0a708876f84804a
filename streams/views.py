from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render

from partyhub.views import api
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
    if before.isdigit():
        images = images.filter(pk__lt=int(before))
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
