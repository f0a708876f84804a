"""What the party says: chat lines and comments on images and prompts (one Message table), and
the members' emoji reactions. Each change is an archived event, like everything in the room.

A facilitator may hide a message: the row keeps its text (and can be shown again), but nothing
the protocol serves carries it any more, the archived events that once did included."""

import unicodedata

from django.db import IntegrityError, models, transaction
from django.db.models import Count, Q
from django.utils import timezone

from core.errors import ApiError
from partyhub.models.event import Event
from partyhub.models.prompt import clean_client_id, one_per_client_id, repeat_of

MAX_TEXT = 500
# A line break per line of a short paragraph; a wall of empty lines would push the chat away.
MAX_LINES = 12
# The reactions a member can add to an image or a prompt, in the order the room shows them:
# name (what the protocol says) -> emoji (what people see; the pages get them from here).
REACTIONS = {"love": "❤️", "laugh": "😂", "wow": "😮", "think": "🤔", "fire": "🔥"}
# Chat lines in a snapshot; older ones are paged back (GET .../messages?before=).
CHAT_PAGE = 50
MAX_CHAT_PAGE = 100
# The events whose payload carries a message as {"message": {...}}: rewritten when it is hidden.
CARRIERS = ("chat.posted", "comment.added", "message.hidden")


def clean_text(text):
    """A message's text, trimmed; `invalid_text` unless it is 1 to 500 characters in at most 12
    lines with something to see (not only spaces, format or control characters)."""
    if not isinstance(text, str):
        raise ApiError("invalid_text", "text must be a string.")
    text = text.strip()
    if not 1 <= len(text) <= MAX_TEXT:
        raise ApiError(
            "invalid_text",
            f"text must be 1 to {MAX_TEXT} characters after trimming, not {len(text)}.",
        )
    if text.count("\n") >= MAX_LINES:
        raise ApiError("invalid_text", f"text may have at most {MAX_LINES} lines.")
    # Letters, marks, numbers, punctuation or symbols (an emoji is a symbol): a line of
    # zero-width spaces or direction marks would be an empty line from someone.
    if not any(unicodedata.category(char)[0] in "LMNPS" for char in text):
        raise ApiError("invalid_text", "text has nothing to read in it.")
    return text


class Message(models.Model):
    class Kind(models.TextChoices):
        CHAT = "chat"  # a line in the room's conversation; image/prompt: what it mentions
        COMMENT = "comment"  # in the thread of its image or its prompt

    party = models.ForeignKey("partyhub.Party", on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey("partyhub.Member", on_delete=models.PROTECT, related_name="messages")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    text = models.CharField(max_length=MAX_TEXT)
    image = models.ForeignKey(
        "partyhub.Image", null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    prompt = models.ForeignKey(
        "partyhub.Prompt", null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    hidden = models.BooleanField(default=False)
    hidden_by = models.ForeignKey(
        "partyhub.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The author's id for the message that made it: a repeat (a retry after a reconnect) finds
    # this message instead of saying it twice.
    client_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            one_per_client_id("message"),
            models.CheckConstraint(
                condition=Q(image__isnull=True) | Q(prompt__isnull=True),
                name="message_about_one_thing",
            ),
        ]
        indexes = [models.Index(fields=["party", "kind", "-id"], name="message_pages")]

    def __str__(self):
        return f"{self.kind} {self.pk} by {self.author_id}"

    def as_dict(self):
        return {
            "id": self.pk,
            "kind": self.kind,
            "author": self.author_id,
            "text": None if self.hidden else self.text,
            "image": self.image_id,
            "prompt": self.prompt_id,
            "hidden": self.hidden,
            "client_id": self.client_id,
            "at": self.created_at.isoformat().replace("+00:00", "Z"),
        }

    @classmethod
    def post(cls, party, author, kind, text, about, client_id=None, charge=None):
        """A chat line (`about`: what it mentions, or None) or a comment (`about`: its thread),
        archived as `chat.posted` / `comment.added`. `about` is an Image or a Prompt of the
        party. `charge()`, the rate limit, is called once the message is known to be valid. A
        `client_id` the author used before makes this a repeat: the earlier message is
        returned and nothing changes."""
        client_id = clean_client_id(client_id)
        if repeat := repeat_of(cls.objects, author, client_id):
            return repeat
        author.check_may_add()
        text = clean_text(text)
        if charge is not None:
            charge()
        event = "chat.posted" if kind == cls.Kind.CHAT else "comment.added"
        try:
            with transaction.atomic():
                message = cls.objects.create(
                    party=party,
                    author=author,
                    kind=kind,
                    text=text,
                    image=about if _is_image(about) else None,
                    prompt=None if about is None or _is_image(about) else about,
                    client_id=client_id or "",
                )
                party.record(event, message=message.as_dict())
        except IntegrityError:
            # The same id from another connection at the same moment: that one was first.
            if repeat := repeat_of(cls.objects, author, client_id):
                return repeat
            raise
        return message

    def set_hidden(self, member, hidden):
        """A facilitator (or the Prompt Master) hides a message from everyone, or shows it again."""
        if not member.may_moderate:
            raise ApiError(
                "forbidden", "Only a facilitator or the Prompt Master hides messages.", 403
            )
        if not isinstance(hidden, bool):
            raise ApiError("invalid_field", "hidden must be true or false.")
        with transaction.atomic():
            message = Message.objects.select_for_update().get(pk=self.pk)
            if message.hidden == hidden:
                return message  # already so: nothing to archive
            message.hidden = hidden
            message.hidden_by = member if hidden else None
            message.save(update_fields=["hidden", "hidden_by"])
            message.rewrite_archive()
            message.party.record(
                "message.hidden", message=message.as_dict(), hidden=hidden, by=member.pk
            )
        return message

    def rewrite_archive(self):
        """The archived events that carry this message carry it as it is now: a replay, a late
        joiner and the export never see a hidden message's text."""
        shown = self.as_dict()
        carriers = Event.objects.filter(
            party_id=self.party_id, type__in=CARRIERS, payload__message__id=self.pk
        )
        for event in carriers:
            event.payload["message"] = shown
            event.save(update_fields=["payload"])

    @classmethod
    def chat_before(cls, party, before=None, limit=CHAT_PAGE):
        """Up to `limit` chat messages older than the message `before` (the newest without
        one), oldest first, and whether there are older ones still."""
        rows = cls.objects.filter(party=party, kind=cls.Kind.CHAT)
        if before is not None:
            rows = rows.filter(pk__lt=before)
        page = list(rows.order_by("-pk")[: limit + 1])
        return page[:limit][::-1], len(page) > limit


class Reaction(models.Model):
    party = models.ForeignKey("partyhub.Party", on_delete=models.CASCADE, related_name="reactions")
    member = models.ForeignKey(
        "partyhub.Member", on_delete=models.CASCADE, related_name="reactions"
    )
    image = models.ForeignKey(
        "partyhub.Image", null=True, blank=True, on_delete=models.CASCADE, related_name="reactions"
    )
    prompt = models.ForeignKey(
        "partyhub.Prompt", null=True, blank=True, on_delete=models.CASCADE, related_name="reactions"
    )
    reaction = models.CharField(max_length=10, choices=[(name, name) for name in REACTIONS])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["member", "image", "reaction"],
                condition=Q(image__isnull=False),
                name="one_reaction_per_image",
            ),
            models.UniqueConstraint(
                fields=["member", "prompt", "reaction"],
                condition=Q(prompt__isnull=False),
                name="one_reaction_per_prompt",
            ),
            models.CheckConstraint(
                condition=Q(image__isnull=True, prompt__isnull=False)
                | Q(image__isnull=False, prompt__isnull=True),
                name="reaction_to_one_thing",
            ),
        ]

    def __str__(self):
        return f"{self.member_id} {self.reaction} {self.image_id or self.prompt_id}"

    @classmethod
    def set(cls, party, member, about, reaction, on):
        """A member adds (`on`) or takes back a reaction to an image or a prompt; archived as
        `reaction.changed` with the reaction's new count, only when it changed."""
        if reaction not in REACTIONS:
            raise ApiError("invalid_reaction", f"reaction must be one of {list(REACTIONS)}.")
        if not isinstance(on, bool):
            raise ApiError("invalid_field", "on must be true or false.")
        target = {"image": about} if _is_image(about) else {"prompt": about}
        with transaction.atomic():
            # Under the party's lock the count includes every reaction committed before, so
            # concurrent ones archive counts that end at the true count (as votes do).
            party.lock()
            if on:
                _, changed = cls.objects.get_or_create(
                    party=party, member=member, reaction=reaction, **target
                )
            else:
                changed = (
                    cls.objects.filter(member=member, reaction=reaction, **target).delete()[0] > 0
                )
            if changed:
                count = cls.objects.filter(reaction=reaction, **target).count()
                party.record(
                    "reaction.changed",
                    image=about.pk if _is_image(about) else None,
                    prompt=None if _is_image(about) else about.pk,
                    reaction=reaction,
                    member=member.pk,
                    on=on,
                    count=count,
                )

    @classmethod
    def tallies(cls, party, member=None):
        """{("image" | "prompt", id): {"reactions": {name: count}, "reacted": [names mine]}}."""
        tallies = {}
        rows = (
            cls.objects.filter(party=party)
            .values("image_id", "prompt_id", "reaction")
            .annotate(count=Count("pk"), mine=Count("pk", filter=Q(member=member)))
            .order_by()
        )
        for row in rows:
            key = ("image", row["image_id"]) if row["image_id"] else ("prompt", row["prompt_id"])
            tally = tallies.setdefault(key, {"reactions": {}, "reacted": []})
            tally["reactions"][row["reaction"]] = row["count"]
            if member is not None and row["mine"]:
                tally["reacted"].append(row["reaction"])
        for tally in tallies.values():  # in the room's order, whatever the database's
            tally["reactions"] = {
                name: tally["reactions"][name] for name in REACTIONS if name in tally["reactions"]
            }
            tally["reacted"].sort(key=list(REACTIONS).index)
        return tallies


def _is_image(about):
    return about is not None and about._meta.model_name == "image"
