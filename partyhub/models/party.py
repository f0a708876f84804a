"""A party and its members: the join code, who may do what, and what the room does together
(prompts, proposals, associations, the palette), each change recorded in the archive."""

import secrets

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from core.errors import ApiError, engine_refusals
from generation.params import check_token_limits, clean_prompt_text, resolve_params
from partyhub import palette

# Join codes avoid letters people confuse when reading them off a projector (0/O, 1/I/L).
from partyhub.models.event import Association, party_group, record_event
from partyhub.models.member import MAX_NAME_LENGTH, Member
from partyhub.models.prompt import Prompt, clean_client_id, repeat_of
from partyhub.models.talk import clean_text

JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 6
MAX_QUESTION = 200


def new_join_code():
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


class PartyQuerySet(models.QuerySet):
    def by_code(self, code):
        # People type codes off a projector in any case; codes are stored upper-case. Anything
        # that cannot be a code matches nothing without a query (a NUL byte would make
        # PostgreSQL raise).
        code = code.upper()
        if len(code) != JOIN_CODE_LENGTH or not set(code) <= set(JOIN_CODE_ALPHABET):
            return self.none()
        return self.filter(code=code)


class Party(models.Model):
    code = models.CharField(max_length=JOIN_CODE_LENGTH, unique=True)
    topic = models.CharField(max_length=200)
    title = models.CharField(max_length=200, blank=True)
    public = models.BooleanField(default=False)
    # Overrides of the model preset's defaults for this party's renders ("params" in the protocol).
    defaults = models.JSONField(default=dict, blank=True)
    # The seq of the newest archived event; bumped under the row lock by Party.record().
    last_seq = models.PositiveBigIntegerField(default=0)
    # A steered party renders only the Prompt Master's prompts; the others propose refinements,
    # which the Prompt Master accepts (they render) or sets aside.
    steered = models.BooleanField(default=False)
    # The host's additions to the built-in palette of styles and artists: [{"kind", "text"}].
    palette = models.JSONField(default=list, blank=True)
    # The discussion question (or a round's theme) a facilitator pinned at the top of the room
    # and the stage; "" when none is pinned.
    question = models.CharField(max_length=MAX_QUESTION, blank=True)
    # Set while the read-only public gallery /g/<code>/ is published.
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = PartyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "parties"

    def __str__(self):
        return f"{self.code}: {self.topic}"

    def get_absolute_url(self):
        return f"/p/{self.code}/"

    @classmethod
    def start(cls, *, topic, title="", public=False, steered=False, session_key, host_name):
        """Create a party with a fresh join code; the creator joins as Prompt Master."""
        with transaction.atomic():
            party = cls.create_with_fresh_code(
                topic=topic, title=title, public=public, steered=steered
            )
            host = party.join(session_key, host_name, role=Member.Role.PROMPT_MASTER)
        return party, host

    @classmethod
    def create_with_fresh_code(cls, **fields):
        """A new party (a meeting's, or a stream's backing one) under a join code no other party
        has. The database's unique index decides; a clash is tried again with another code."""
        for _ in range(10):
            try:
                with transaction.atomic():
                    return cls.objects.create(code=new_join_code(), **fields)
            except IntegrityError:
                continue  # the code was taken: 31^6 codes make a second clash vanishingly rare
        raise RuntimeError("could not find a free join code")

    @property
    def group(self):
        return party_group(self.pk)

    def ws_path(self):
        return f"/ws/parties/{self.code}/"

    def join(self, session_key, name, role=None):
        """Join, or rejoin from the same session under a (new) name; returns the member. A name
        another member of the party has (in any case) gets the first free number: "Ann 2"."""
        with transaction.atomic():
            self.lock()  # two Anns joining at once would both find "Ann" free
            member, created = Member.objects.get_or_create(
                party=self,
                session_key=session_key,
                defaults={"name": name, "role": role or Member.Role.PARTICIPANT},
            )
            member.check_not_removed()
            free = self.free_name(name, member)
            if not created and member.name == free:
                return member
            if member.name != free:
                member.name = free
                member.save(update_fields=["name"])
            self.record("member.joined", member=member.as_dict())
        return member

    def free_name(self, name, member):
        """`name`, or `name` with the first number from 2 that no other member of the party is
        called. Removed members are no longer the party's people: their names are free."""
        taken = {
            other.lower()
            for other in self.members.filter(removed=False)
            .exclude(pk=member.pk)
            .values_list("name", flat=True)
        }
        candidate, number = name, 1
        while candidate.lower() in taken:
            number += 1
            suffix = f" {number}"
            candidate = name[: MAX_NAME_LENGTH - len(suffix)].rstrip() + suffix
        return candidate

    def record(self, event_type, **payload):
        """Append an event to the archive and broadcast it to the room (`record_event`)."""
        event = record_event(self.pk, event_type, **payload)
        self.last_seq = event.seq
        return event

    def submit_prompt(self, author, text, parent_id=None, params=None, charge=None, client_id=None):
        """Add a prompt (a refinement when it has a parent) and queue its render. `charge()`, a
        rate limit, is called once the prompt is known to be valid and before anything is
        written. A `client_id` the author used before makes this a repeat: nothing changes and
        the earlier prompt and its render are returned."""
        client_id = clean_client_id(client_id)
        if repeat := repeat_of(self.prompts, author, client_id):
            return repeat, repeat.renders.order_by("pk").first()
        author.check_may_add()
        if self.steered and not author.is_prompt_master:
            raise ApiError(
                "steered", "The Prompt Master steers this party: propose your prompt instead.", 403
            )
        text, parent, resolved = self._clean_prompt(text, parent_id, params)
        if charge is not None:
            charge()
        try:
            with transaction.atomic():
                prompt = self._add_prompt(author, text, parent, resolved, client_id)
                self.record("prompt.added", prompt=prompt.as_dict())
                render = prompt.queue_render()
        except IntegrityError:
            # The same id from another connection at the same moment: that one was first.
            if repeat := repeat_of(self.prompts, author, client_id):
                return repeat, repeat.renders.order_by("pk").first()
            raise
        return prompt, render

    def propose(self, author, text, parent_id=None, params=None, client_id=None):
        """A prompt for the Prompt Master to accept (it renders) or set aside. A repeated
        `client_id` returns the earlier proposal and changes nothing, as for submit_prompt."""
        client_id = clean_client_id(client_id)
        if repeat := repeat_of(self.prompts, author, client_id):
            return repeat
        author.check_may_add()
        text, parent, resolved = self._clean_prompt(text, parent_id, params)
        try:
            with transaction.atomic():
                prompt = self._add_prompt(
                    author, text, parent, resolved, client_id, Prompt.Status.PROPOSED
                )
                self.record("prompt.proposed", prompt=prompt.as_dict())
        except IntegrityError:
            if repeat := repeat_of(self.prompts, author, client_id):
                return repeat
            raise
        return prompt

    def _add_prompt(self, author, text, parent, resolved, client_id, status=None):
        return Prompt.objects.create(
            party=self,
            parent=parent,
            author=author,
            text=text,
            params=resolved,
            status=status or Prompt.Status.SUBMITTED,
            source=Prompt.source_for(self, text, resolved),
            client_id=client_id or "",
        )

    def _clean_prompt(self, text, parent_id, params):
        with engine_refusals():
            text = clean_prompt_text(text)
        parent = None
        if parent_id is not None:
            parent = self.prompts.filter(pk=parent_id).first()
            if parent is None:
                raise ApiError("unknown_prompt", f"Prompt {parent_id} is not in this party.", 404)
        with engine_refusals():
            resolved = resolve_params(params, self.defaults, self.find_source)
            return text, parent, check_token_limits(text, resolved)

    def find_source(self, kind, pk):
        """A source image of this party for img2img and its kin: size and seed, or None."""
        if kind == "image":
            image = self.images.filter(pk=pk).first()
            return image and {"width": image.width, "height": image.height, "seed": image.seed}
        upload = self.uploads.filter(pk=pk).first()
        return upload and {"width": upload.width, "height": upload.height, "seed": None}

    def member_for_session(self, session_key):
        """The member this browser session is, or None (also for one removed from the party)."""
        if not session_key:
            return None
        return self.members.filter(session_key=session_key, removed=False).first()

    def lock(self):
        """Take the party's row lock until the transaction ends: serialises changes whose
        archived event carries a total (votes) or that check before they write (duplicates)."""
        Party.objects.select_for_update().filter(pk=self.pk).values_list("pk").get()

    def add_association(self, author, text):
        author.check_may_add()
        if not isinstance(text, str) or not 1 <= len(text.strip()) <= 100:
            raise ApiError("invalid_association", "text must be 1 to 100 characters.")
        text = text.strip()
        with transaction.atomic():
            self.lock()
            # The board counts people per word: one person saying it twice is still one.
            if self.associations.filter(author=author, text__iexact=text).exists():
                raise ApiError("duplicate_association", f"You added “{text}” already.", 409)
            association = Association.objects.create(party=self, author=author, text=text)
            self.record("association.added", association=association.as_dict())
        return association

    def add_to_palette(self, member, kind, text):
        """The host (the Prompt Master) extends this party's palette of styles and artists."""
        if not member.is_prompt_master:
            raise ApiError("forbidden", "Only the Prompt Master extends the palette.", 403)
        with transaction.atomic():
            self.lock()
            self.refresh_from_db(fields=["palette"])
            entry = palette.clean_entry(self, kind, text)
            self.palette = [*self.palette, entry]
            self.save(update_fields=["palette"])
            self.record("palette.added", entry=entry, by=member.pk)
        return entry

    def set_steered(self, member, steered):
        """In a steered party only the Prompt Master renders; the others propose."""
        if not member.is_prompt_master:
            raise ApiError("forbidden", "Only the Prompt Master decides who renders.", 403)
        if not isinstance(steered, bool):
            raise ApiError("invalid_field", "steered must be true or false.")
        with transaction.atomic():
            if Party.objects.filter(pk=self.pk).exclude(steered=steered).update(steered=steered):
                self.steered = steered
                self.record("party.steered", steered=steered, by=member.pk)

    def pin_question(self, member, text):
        """A facilitator (or the Prompt Master) pins the question the room talks about, or
        takes it down (`text` None)."""
        if not member.may_moderate:
            raise ApiError("forbidden", "Only a facilitator or the Prompt Master pins it.", 403)
        if text is not None:
            if isinstance(text, str) and ("\n" in text or "\r" in text):
                raise ApiError("invalid_text", "The question is one line.")
            text = clean_text(text)  # the checks every message's text goes through
            if len(text) > MAX_QUESTION:
                raise ApiError(
                    "invalid_text",
                    f"The question is at most {MAX_QUESTION} characters, not {len(text)}.",
                )
        with transaction.atomic():
            question = text or ""
            if (
                Party.objects.filter(pk=self.pk)
                .exclude(question=question)
                .update(question=question)
            ):
                self.question = question
                self.record("question.pinned", question=text, by=member.pk)

    def set_published(self, member, published):
        """The Prompt Master publishes the read-only public gallery /g/<code>/, or takes it down."""
        if not member.is_prompt_master:
            raise ApiError("forbidden", "Only the Prompt Master publishes the gallery.", 403)
        if not isinstance(published, bool):
            raise ApiError("invalid_published", "published must be true or false.")
        with transaction.atomic():
            changed = Party.objects.filter(pk=self.pk, published_at__isnull=published).update(
                published_at=timezone.now() if published else None
            )
            self.refresh_from_db(fields=["published_at"])
            if changed:
                self.record("party.published", published=published, by=member.pk)

    def events_after(self, since, limit=None):
        events = self.events.filter(seq__gt=since).order_by("seq")
        return events[:limit] if limit else events
