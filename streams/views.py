from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from partyhub.errors import ApiError
from partyhub.inbound import whole_number
from partyhub.views import api, json_body
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


def sign_up(request):
    """An account to submit prompts to streams (parties never need one)."""
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.save())
        after = request.GET.get("next", "")
        # Only back to a page of this site, as Django's own login view does.
        safe = url_has_allowed_host_and_scheme(
            after, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        return redirect(after if safe else "/")
    return render(request, "registration/signup.html", {"form": form})


@api("POST")
def hide_image(request, slug, image_id):
    stream = get_object_or_404(Stream, slug=slug)
    if not request.user.is_staff:
        raise ApiError("forbidden", "Only staff hide images.", 403)
    stream.hide(image_id)
    return JsonResponse({"hidden": image_id})
