"""A finished render of a stream's backing party becomes `stream.image` for its viewers and
lets the next submission go."""

from django.db import transaction
from django.dispatch import receiver

from partyhub.broadcast import group_send_on_commit
from partyhub.models import Image, Render
from partyhub.signals import render_finished
from streams.models import Stream, image_message


@receiver(render_finished, sender=Render)
def on_stream_render_finished(sender, render, images, **kwargs):
    stream = Stream.objects.filter(party_id=render.party_id).first()
    if stream is None:
        return
    # A render slot is free: the next submission in the fair order may go.
    transaction.on_commit(stream.dispatch)
    if images is None:
        return
    rows = Image.objects.filter(pk__in=[image["id"] for image in images]).select_related(
        "render__prompt__author"
    )
    for row in rows.order_by("pk"):
        group_send_on_commit(stream.group, image_message(row))
