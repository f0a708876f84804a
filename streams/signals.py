"""A finished render of a stream's backing party becomes `stream.image` for its viewers and
lets the next submission go."""

import json

from django.db import transaction
from django.dispatch import receiver

from core.broadcast import group_send
from generation.scoring import get_scorer, image_similarities
from partyhub.jobs.sources import open_stored_png
from partyhub.models import Image, Render
from partyhub.signals import render_finished
from streams.models import AUTOPILOT_KEY, Stream, image_message


@receiver(render_finished, sender=Render)
def on_stream_render_finished(sender, render, images, **kwargs):
    stream = Stream.objects.filter(party_id=render.party_id).first()
    if stream is None:
        return
    # A render slot is free: the next submission in the fair order may go.
    transaction.on_commit(stream.dispatch)
    if images is None:
        return
    ids = [image["id"] for image in images]
    # After the commit: the CLIP checks below must not hold the render's row locks.
    transaction.on_commit(lambda: show_or_hide(stream, ids))


def show_or_hide(stream, image_ids):
    """Announce a finished stream render's images, except the off-topic ones and the
    autopilot's near copies of recent images, which are hidden and never shown."""
    rows = list(
        Image.objects.filter(pk__in=image_ids)
        .select_related("render__prompt__author")
        .order_by("pk")
    )
    shown = [row for row in rows if not _off_topic(stream, row)]
    if rows and rows[0].render.prompt.author.session_key == AUTOPILOT_KEY:
        shown = _without_near_duplicates(stream, shown)
    Image.objects.filter(pk__in=[row.pk for row in rows if row not in shown]).update(hidden=True)
    if not shown:
        return
    # Each image names the visible one before it, so a viewer that missed one (the channel
    # layer delivers at most once) can tell and fill the gap.
    before = (
        stream.images()
        .filter(pk__lt=shown[0].pk)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    for row in shown:
        message = image_message(row)
        # Encoded once here, not once per viewer.
        group_send(stream.group, {**message, "after": before or 0, "frame": json.dumps(message)})
        before = row.pk


def _off_topic(stream, image):
    # Only where CLIP scored the image: without weights there is no score and no filter.
    return image.topic_score is not None and image.topic_score < stream.min_image_topic_score


RECENT_FOR_DUPLICATES = 8


def _without_near_duplicates(stream, images):
    """The autopilot's images that are not a near copy of one of the stream's recent ones."""
    if not images or get_scorer() is None:
        return images  # nothing to compare with, or nothing to compare by: read no files
    recent = list(
        stream.images()
        .exclude(pk__in=[i.pk for i in images])
        .order_by("-pk")[:RECENT_FOR_DUPLICATES]
    )
    similarities = image_similarities(
        [open_stored_png(i.file.name) for i in images],
        [open_stored_png(i.file.name) for i in recent],
    )
    if similarities is None:
        return images
    return [
        image
        for image, row in zip(images, similarities, strict=True)
        if max(row) < stream.duplicate_similarity
    ]
