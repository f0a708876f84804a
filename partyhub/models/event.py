"""The party's archive: every change is an Event with a gapless seq, broadcast to the room
once committed; and the word associations people add."""

import json

from django.db import connection, models, transaction
from django.utils import timezone

from core.broadcast import group_send_on_commit

# Join codes avoid letters people confuse when reading them off a projector (0/O, 1/I/L).


def party_group(party_id):
    """The channel-layer group every connected member of a party listens on."""
    return f"party.{party_id}"


def record_event(party_id, event_type, **payload):
    """Append an event to a party's archive and broadcast it to the room once the transaction
    commits; returns the event.

    The UPDATE takes the party's row lock until commit, so concurrent writers (server
    processes, workers) get strictly increasing seqs with no gaps, and commit in seq order.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            # One statement bumps and reads the seq (RETURNING: PostgreSQL, SQLite >= 3.35).
            cursor.execute(
                f"UPDATE {Event.party.field.related_model._meta.db_table} "
                "SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq",
                [party_id],
            )
            (seq,) = cursor.fetchone()
        event = Event.objects.create(party_id=party_id, seq=seq, type=event_type, payload=payload)
        # Encoded once here, not once per connected member.
        group_send_on_commit(
            party_group(party_id),
            {"type": "party.event", "seq": event.seq, "frame": event.as_frame()},
        )
    return event


class Association(models.Model):
    party = models.ForeignKey(
        "partyhub.Party", on_delete=models.CASCADE, related_name="associations"
    )
    author = models.ForeignKey(
        "partyhub.Member", on_delete=models.PROTECT, related_name="associations"
    )
    text = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.text

    def as_dict(self):
        return {"id": self.pk, "text": self.text, "author": self.author_id}


class Event(models.Model):
    """The party's append-only archive: replay, reconnect catch-up and the export read it."""

    party = models.ForeignKey("partyhub.Party", on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["party", "seq"], name="one_event_per_seq")]
        ordering = ["party", "seq"]

    def __str__(self):
        return f"{self.party_id}#{self.seq} {self.type}"

    def as_message(self):
        return {
            "type": self.type,
            "seq": self.seq,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            **self.payload,
        }

    def as_frame(self):
        """The message as the WebSocket text frame that carries it."""
        return json.dumps(self.as_message())
