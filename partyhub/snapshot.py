"""The state of a party as one JSON document: what a client loads before it goes live."""

from contextlib import contextmanager

from django.db import connection, transaction

from partyhub import presence
from partyhub.models import Image, Message, Reaction
from partyhub.palette import palette


@contextmanager
def consistent_reads():
    """Read the queries inside from one database snapshot, so `last_seq` matches the rows read.

    PostgreSQL's default READ COMMITTED takes a fresh snapshot per statement; REPEATABLE READ
    keeps the first one. SQLite's transactions are serializable already.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def snapshot(party, member=None):
    with consistent_reads():
        party.refresh_from_db(fields=["last_seq", "palette", "steered", "published_at", "question"])
        return _snapshot(party, member)


def _snapshot(party, member):
    prompts = list(party.prompts.order_by("pk"))
    renders = list(party.renders.order_by("pk"))
    images = list(
        Image.objects.filter(party=party)
        .select_related("render__prompt")  # for each image's parameters text
        .with_votes()
        .order_by("pk")
    )
    members = list(party.members.order_by("pk"))
    my_votes = set(member.votes.values_list("image_id", flat=True)) if member else set()
    tallies = Reaction.tallies(party, member)
    chat, chat_earlier = Message.chat_before(party)
    comments = party.messages.filter(kind=Message.Kind.COMMENT).order_by("pk")
    return {
        "code": party.code,
        "topic": party.topic,
        "title": party.title,
        "public": party.public,
        "url": party.get_absolute_url(),
        "ws": party.ws_path(),
        "defaults": party.defaults,
        "steered": party.steered,
        "published": party.published_at is not None,
        "me": member.as_dict() if member else None,
        # Every member, so that each prompt's author has a name; the party's people are the
        # ones not removed, and `people` counts them.
        "members": [m.as_dict() for m in members],
        "people": sum(1 for m in members if not m.removed),
        # Not from the database: who has the room open at this moment.
        "online": presence.online(party.pk),
        "prompts": prompt_tree(prompts, tallies),
        "renders": [render.as_dict() for render in renders],
        "sweeps": [sweep.as_dict() for sweep in party.sweeps.order_by("pk")],
        "images": [
            {
                **image.as_dict(),
                "votes": image.vote_count,
                "voted": image.pk in my_votes,
                "picked": image.picked_at is not None,
                "picked_by": image.picked_by_id,
                "note": image.pick_note,
                "shortlisted": image.shortlisted,
                **_tally(tallies, "image", image.pk),
            }
            for image in images
        ],
        "associations": [a.as_dict() for a in party.associations.order_by("pk")],
        "palette": palette(party),
        "question": party.question or None,
        "chat": [message.as_dict() for message in chat],
        "chat_earlier": chat_earlier,
        "comments": [message.as_dict() for message in comments],
        "last_seq": party.last_seq,
    }


def prompt_tree(prompts, tallies=None):
    """Prompts as nested nodes (`children`), roots in the order they were written. A prompt sits
    under its parent (the prompt it refines) or, refining none, under its source (the prompt
    whose image it started from with "Use"). With `tallies` (Reaction.tallies), each node also
    has its `reactions` and `reacted`."""
    nodes = {p.pk: {**p.as_dict(), "children": []} for p in prompts}
    if tallies is not None:
        for pk, node in nodes.items():
            node.update(_tally(tallies, "prompt", pk))
    roots = []
    for prompt in prompts:
        parent = nodes.get(prompt.parent_id) or nodes.get(prompt.source_id)
        (parent["children"] if parent else roots).append(nodes[prompt.pk])
    return roots


def _tally(tallies, kind, pk):
    return tallies.get((kind, pk), {"reactions": {}, "reacted": []})
