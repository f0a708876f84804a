"""A finished render of a stream's backing party becomes `stream.image` for its viewers."""

from django.dispatch import receiver

from partyhub.broadcast import group_send_on_commit
from partyhub.models import Image, Render
from partyhub.signals import render_done
from streams.models import Stream, image_message


@receiver(render_done, sender=Render)
def announce_stream_images(sender, render, images, **kwargs):
    stream = Stream.objects.filter(party_id=render.party_id).first()
    if stream is None:
        return
    rows = Image.objects.filter(pk__in=[image["id"] for image in images]).select_related(
        "render__prompt__author"
    )
    for row in rows.order_by("pk"):
        group_send_on_commit(stream.group, image_message(row))
