import json
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Count, Q
from django.utils import timezone

from generation.dispatch import enqueue_on_commit
from generation.params import batch_key, check_token_limits, clean_prompt_text, resolve_params
from partyhub import palette
from partyhub.broadcast import group_send_on_commit
from partyhub.errors import ApiError
from partyhub.signals import render_finished

# Join codes avoid letters people confuse when reading them off a projector (0/O, 1/I/L).
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 6


def new_join_code():
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def party_group(party_id):
    """The channel-layer group every connected member of a party listens on."""
    return f"party.{party_id}"


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
        for _ in range(10):
            try:
                with transaction.atomic():
                    party = cls.objects.create(
                        code=new_join_code(),
                        topic=topic,
                        title=title,
                        public=public,
                        steered=steered,
                    )
                    host = party.join(session_key, host_name, role=Member.Role.PROMPT_MASTER)
                    return party, host
            except IntegrityError:
                continue  # the code was taken: 31^6 codes make a second clash vanishingly rare
        raise RuntimeError("could not find a free join code")

    @property
    def group(self):
        return party_group(self.pk)

    def ws_path(self):
        return f"/ws/parties/{self.code}/"

    def join(self, session_key, name, role=None):
        """Join, or rejoin from the same session under a (new) name; returns the member."""
        with transaction.atomic():
            member, created = Member.objects.get_or_create(
                party=self,
                session_key=session_key,
                defaults={"name": name, "role": role or Member.Role.PARTICIPANT},
            )
            member.check_not_removed()
            if not created and member.name == name:
                return member
            if not created:
                member.name = name
                member.save(update_fields=["name"])
            self.record("member.joined", member=member.as_dict())
        return member

    def record(self, event_type, **payload):
        """Append an event to the archive and broadcast it to the room once the transaction commits.

        The UPDATE takes the party's row lock until commit, so concurrent writers (server
        processes, workers) get strictly increasing seqs with no gaps, and commit in seq order.
        """
        with transaction.atomic():
            with connection.cursor() as cursor:
                # One statement bumps and reads the seq (RETURNING: PostgreSQL, SQLite >= 3.35).
                cursor.execute(
                    f"UPDATE {Party._meta.db_table} SET last_seq = last_seq + 1 "
                    "WHERE id = %s RETURNING last_seq",
                    [self.pk],
                )
                (self.last_seq,) = cursor.fetchone()
            event = Event.objects.create(
                party=self, seq=self.last_seq, type=event_type, payload=payload
            )
            # Encoded once here, not once per connected member.
            group_send_on_commit(
                self.group, {"type": "party.event", "seq": event.seq, "frame": event.as_frame()}
            )
        return event

    def submit_prompt(self, author, text, parent_id=None, params=None, queue=None, charge=None):
        """Add a prompt (a refinement when it has a parent) and queue its render (on a Celery
        `queue` other than the default one, for streams). `charge()`, a rate limit, is called
        once the prompt is known to be valid and before anything is written."""
        author.check_may_add()
        if self.steered and not author.is_prompt_master:
            raise ApiError(
                "steered", "The Prompt Master steers this party: propose your prompt instead.", 403
            )
        text, parent, resolved = self._clean_prompt(text, parent_id, params)
        if charge is not None:
            charge()
        with transaction.atomic():
            prompt = Prompt.objects.create(
                party=self, parent=parent, author=author, text=text, params=resolved
            )
            self.record("prompt.added", prompt=prompt.as_dict())
            render = prompt.queue_render(queue)
        return prompt, render

    def propose(self, author, text, parent_id=None, params=None):
        """A prompt for the Prompt Master to accept (it renders) or set aside."""
        author.check_may_add()
        text, parent, resolved = self._clean_prompt(text, parent_id, params)
        with transaction.atomic():
            prompt = Prompt.objects.create(
                party=self,
                parent=parent,
                author=author,
                text=text,
                params=resolved,
                status=Prompt.Status.PROPOSED,
            )
            self.record("prompt.proposed", prompt=prompt.as_dict())
        return prompt

    def _clean_prompt(self, text, parent_id, params):
        text = clean_prompt_text(text)
        parent = None
        if parent_id is not None:
            parent = self.prompts.filter(pk=parent_id).first()
            if parent is None:
                raise ApiError("unknown_prompt", f"Prompt {parent_id} is not in this party.", 404)
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


class Member(models.Model):
    class Role(models.TextChoices):
        PROMPT_MASTER = "prompt_master", "Prompt Master"
        ART_EXPERT = "art_expert", "Art Expert"
        PARTICIPANT = "participant", "Participant"
        FACILITATOR = "facilitator", "Facilitator"

    party = models.ForeignKey(Party, on_delete=models.CASCADE, related_name="members")
    # A member is whoever holds this browser session; no account is needed to join a party.
    session_key = models.CharField(max_length=40)
    name = models.CharField(max_length=99)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.PARTICIPANT)
    joined_at = models.DateTimeField(default=timezone.now)
    # Set by a facilitator: a muted member still watches and votes but adds no prompts or
    # associations; a removed one is out (kept, since what they made stays in the archive).
    muted = models.BooleanField(default=False)
    removed = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["party", "session_key"], name="one_member_per_session")
        ]

    def __str__(self):
        return f"{self.name} ({self.role})"

    def as_dict(self):
        return {
            "id": self.pk,
            "name": self.name,
            "role": self.role,
            "muted": self.muted,
            "removed": self.removed,
        }

    @property
    def is_prompt_master(self):
        return self.role == self.Role.PROMPT_MASTER

    @property
    def may_pick(self):
        return self.role in (self.Role.PROMPT_MASTER, self.Role.ART_EXPERT)

    @property
    def may_moderate(self):
        return self.role in (self.Role.PROMPT_MASTER, self.Role.FACILITATOR)

    def check_not_removed(self):
        if self.removed:
            raise ApiError("removed", "You were removed from this party.", 403)

    def check_may_add(self):
        """Refuses a muted member's prompts and associations."""
        if self.muted:
            raise ApiError("muted", "A facilitator muted you: you can watch and vote.", 403)

    def mute(self, target, muted):
        """A facilitator (or the Prompt Master) mutes or unmutes another member."""
        if not isinstance(muted, bool):
            raise ApiError("invalid_field", "muted must be true or false.")
        self._check_may_moderate(target)
        with transaction.atomic():
            updated = Member.objects.filter(pk=target.pk).exclude(muted=muted).update(muted=muted)
            if updated:
                target.muted = muted
                self.party.record("member.muted", member=target.as_dict(), by=self.pk)

    def remove(self, target):
        """A facilitator (or the Prompt Master) removes another member from the party: their
        socket is closed and they cannot join again from that session."""
        self._check_may_moderate(target)
        with transaction.atomic():
            if Member.objects.filter(pk=target.pk, removed=False).update(removed=True):
                target.removed = True
                self.party.record("member.removed", member=target.as_dict(), by=self.pk)
                # Besides the archived event: tells the member's own connections to close.
                group_send_on_commit(
                    self.party.group, {"type": "member.removed", "member": target.pk}
                )

    def _check_may_moderate(self, target):
        if not self.may_moderate:
            raise ApiError("forbidden", "Only a facilitator or the Prompt Master does that.", 403)
        if target.pk == self.pk or target.is_prompt_master:
            raise ApiError("forbidden", "Not yourself, and not the Prompt Master.", 403)

    def set_role(self, target, role):
        """The Prompt Master gives `target` a role; giving Prompt Master away hands it over."""
        if not self.is_prompt_master:
            raise ApiError("forbidden", "Only the Prompt Master sets roles.", 403)
        if role not in self.Role.values:
            raise ApiError("invalid_role", f"role must be one of {self.Role.values}.")
        if target.pk == self.pk:
            raise ApiError(
                "invalid_role", "Hand the Prompt Master role to someone else to step down."
            )
        with transaction.atomic():
            changed = [target]
            target.role = role
            target.save(update_fields=["role"])
            if role == self.Role.PROMPT_MASTER:
                self.role = self.Role.PARTICIPANT
                self.save(update_fields=["role"])
                changed.append(self)
            for member in changed:
                self.party.record("role.changed", member=member.as_dict(), by=self.pk)


class Prompt(models.Model):
    class Status(models.TextChoices):
        SUBMITTED = "submitted"  # rendered (or queued to render)
        PROPOSED = "proposed"  # waiting for the Prompt Master of a steered party
        SET_ASIDE = "set_aside"  # a proposal the Prompt Master did not render

    party = models.ForeignKey(Party, on_delete=models.CASCADE, related_name="prompts")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    author = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="prompts")
    text = models.CharField(max_length=1000)
    # Fully resolved generation parameters (model, size, steps, seed, ...), never partial.
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SUBMITTED)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.text

    def as_dict(self):
        return {
            "id": self.pk,
            "text": self.text,
            "parent": self.parent_id,
            "author": self.author_id,
            "params": self.params,
            "status": self.status,
        }

    def queue_render(self, queue=None):
        """Queue this prompt's render; enqueued for a worker once the transaction commits."""
        render = Render.objects.create(
            party=self.party, prompt=self, params=self.params, batch_key=batch_key(self.params)
        )
        self.party.record(
            "render.queued",
            render={
                "id": render.pk,
                "prompt": self.pk,
                "position": render.queue_position(),
                "params": self.params,
            },
        )
        enqueue_on_commit(render.pk, queue)
        return render

    def accept(self, member):
        """The Prompt Master accepts a proposal: it renders, credited to whoever proposed it."""
        with transaction.atomic():
            prompt = self._decide(member, self.Status.SUBMITTED)
            self.party.record("proposal.accepted", prompt=prompt.pk, by=member.pk)
            return prompt.queue_render()

    def set_aside(self, member):
        """The Prompt Master sets a proposal aside: it stays in the tree, unrendered."""
        with transaction.atomic():
            prompt = self._decide(member, self.Status.SET_ASIDE)
            self.party.record("proposal.set_aside", prompt=prompt.pk, by=member.pk)

    def _decide(self, member, status):
        if not member.is_prompt_master:
            raise ApiError("forbidden", "Only the Prompt Master decides on proposals.", 403)
        # Locked, so two clicks on Accept cannot queue two renders.
        prompt = Prompt.objects.select_for_update().select_related("party").get(pk=self.pk)
        if prompt.status != self.Status.PROPOSED:
            raise ApiError("not_proposed", f"Prompt {self.pk} is not a waiting proposal.", 409)
        prompt.status = status
        prompt.save(update_fields=["status"])
        return prompt

    def lineage(self):
        """This prompt and its ancestors, root first."""
        chain, node = [], self
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain[::-1]


class RenderQuerySet(models.QuerySet):
    def unfinished(self):
        return self.filter(status__in=[Render.Status.QUEUED, Render.Status.RUNNING])

    def lapsed(self):
        """Running renders whose worker stopped renewing its lease: free for another worker."""
        return self.filter(status=Render.Status.RUNNING, lease_until__lt=timezone.now())

    def queues(self):
        """(id, Celery queue) for each render, as `Prompt.queue_render` was given it: a stream's
        renders go to the "streams" queue, a party's to the default one."""
        rows = self.values_list("pk", "party__stream")
        return [(pk, "streams" if stream else None) for pk, stream in rows]

    def next_queued_id(self):
        """The oldest queued render, a party's before a stream's: a party's latency matters more."""
        queued = (
            self.filter(status=Render.Status.QUEUED).order_by("pk").values_list("pk", flat=True)
        )
        return queued.filter(party__stream__isnull=True).first() or queued.first()


class Render(models.Model):
    """One generation job: a prompt with its parameters, rendered into `count` images."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"
        FILTERED = "filtered"

    TERMINAL = (Status.DONE, Status.FAILED, Status.CANCELLED, Status.FILTERED)

    party = models.ForeignKey(Party, on_delete=models.CASCADE, related_name="renders")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="renders")
    params = models.JSONField()
    # Renders with equal keys can share one forward pass (generation.params.batch_key).
    batch_key = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    # Claiming sets a fresh token; only the holder of the current token may finish the render,
    # so a worker that lost its claim (stalled, redelivered elsewhere) cannot store anything.
    claim_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    # A walk's frames as one animated WebP (the frames are its images too).
    animation = models.FileField(max_length=200, blank=True)
    # Who asked to cancel a running render, archived once the worker has stopped.
    cancel_requested_by = models.ForeignKey(
        "Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = RenderQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["status", "id"]),
            models.Index(fields=["status", "batch_key", "id"]),
        ]

    def __str__(self):
        return f"render {self.pk} ({self.status})"

    def as_dict(self):
        return {
            "id": self.pk,
            "prompt": self.prompt_id,
            "status": self.status,
            "params": self.params,
            "error": {"code": self.error_code, "message": self.error_message}
            if self.status == self.Status.FAILED
            else None,
            "animation": self.animation.url if self.animation else None,
        }

    def queue_position(self):
        """How many renders will start before this one, counting those already running."""
        return Render.objects.unfinished().filter(pk__lt=self.pk).count()

    @classmethod
    def claim(cls, render_id):
        """Take a queued render for this worker; returns it with a fresh claim token, or None.

        A running render is taken over only once its lease has lapsed: its worker stalled, or
        died (the Celery parent that saw it die ends the lease at once, `worker_lost`). The room
        is told the render is being retried. A render that already used up its attempts ends
        `failed` with `worker_crashed` instead of running again.
        """
        now = timezone.now()
        with transaction.atomic():
            render = cls.objects.select_for_update().filter(pk=render_id).first()
            if render is None:
                return None
            lapsed = render.lease_until is not None and render.lease_until < now
            if render.status == cls.Status.RUNNING and lapsed:
                pass
            elif render.status != cls.Status.QUEUED:
                return None
            if render.attempts >= settings.RENDER_MAX_ATTEMPTS:
                render._fail_crashed()
                return None
            if render.status == cls.Status.RUNNING:
                render._record_retry()
            render._start(now)
            return render

    @classmethod
    def worker_lost(cls, render_id):
        """The worker process running this render died (the Celery parent saw it go): end the
        lease, so the redelivered message takes the render over at once, or fail it as
        `worker_crashed` if that was its last attempt."""
        with transaction.atomic():
            render = cls.objects.select_for_update().filter(pk=render_id).first()
            if render is None or render.status != cls.Status.RUNNING:
                return
            if render.attempts >= settings.RENDER_MAX_ATTEMPTS:
                render._fail_crashed()
            else:
                render.lease_until = timezone.now()
                render.save(update_fields=["lease_until"])

    @classmethod
    def fail_unqueued(cls, render_id):
        """Its message never reached the broker: the render ends `failed`, never to run."""
        cls._fail_if(
            render_id,
            cls.Status.QUEUED,
            "queue_unavailable",
            "The render queue could not be reached.",
        )

    @classmethod
    def hard_time_limit_exceeded(cls, render_id):
        """Its worker process was replaced for running past the hard time limit (it ignored
        the soft one): the render ends `timed_out`, as at the soft limit."""
        cls._fail_if(
            render_id, cls.Status.RUNNING, "timed_out", "The render ran past the hard time limit."
        )

    @classmethod
    def _fail_if(cls, render_id, status, code, message):
        """Ends the render `failed` with `code` if it is still in `status`, under its row lock
        (a worker may be finishing it at the same moment)."""
        with transaction.atomic():
            render = cls.objects.select_for_update().filter(pk=render_id).first()
            if render is not None and render.status == status:
                render._finish(cls.Status.FAILED, error=(code, message))

    def _fail_crashed(self):
        self._finish(
            self.Status.FAILED,
            error=("worker_crashed", "The render stopped its worker too many times."),
        )

    def _record_retry(self):
        Party(pk=self.party_id).record(
            "render.retrying",
            render=self.pk,
            prompt=self.prompt_id,
            attempt=self.attempts + 1,
            max_attempts=settings.RENDER_MAX_ATTEMPTS,
        )

    @classmethod
    def claim_companions(cls, leader, max_images):
        """Claim queued renders that can share `leader`'s forward pass, oldest first, from any
        party, while their images and the leader's stay within `max_images`."""
        room = max_images - leader.params["count"]
        if room <= 0 or not leader.batch_key:
            return []
        now = timezone.now()
        companions = []
        with transaction.atomic():
            candidates = (
                cls.objects.select_for_update(skip_locked=True)
                .filter(status=cls.Status.QUEUED, batch_key=leader.batch_key)
                .filter(params__count__lte=room)
                .exclude(pk=leader.pk)
                .order_by("pk")[:room]  # every render brings at least one image
            )
            for render in candidates:
                if render.params["count"] > room:
                    continue
                if render.attempts >= settings.RENDER_MAX_ATTEMPTS:
                    continue  # its own delivery ends it as worker_crashed
                render._start(now)
                companions.append(render)
                room -= render.params["count"]
        return companions

    def _start(self, now):
        self.status = self.Status.RUNNING
        self.claim_token = uuid.uuid4().hex
        self.attempts += 1
        self.started_at = now
        self.lease_until = now + timedelta(seconds=self.lease_seconds([self.params]))
        self.save()

    @staticmethod
    def lease_seconds(batch_params):
        """How long a worker may hold renders with these params, rendered together, without
        renewing its lease: settings.RENDER_LEASE_BASE_SECONDS plus RENDER_LEASE_MS_PER_STEP for
        each step of each image, per 512×512 pixels (never less than one such image)."""
        work = sum(
            p["steps"] * p["count"] * max(1.0, p["width"] * p["height"] / 512**2)
            for p in batch_params
        )
        return settings.RENDER_LEASE_BASE_SECONDS + work * settings.RENDER_LEASE_MS_PER_STEP / 1000

    @classmethod
    def renew_leases(cls, claims, seconds):
        """Extend the leases of the (render id, claim token) pairs still held; returns the ids
        whose claim was lost (taken over by another worker or ended)."""
        until = timezone.now() + timedelta(seconds=seconds)
        lost = set()
        for render_id, token in claims:
            held = cls.objects.filter(pk=render_id, status=cls.Status.RUNNING, claim_token=token)
            if not held.update(lease_until=until):
                lost.add(render_id)
        return lost

    def complete(self, token, images, animation=""):
        """Store the rendered images' rows and end `done`; False if the claim was lost meanwhile.

        `images` are dicts with index, file (a storage name), seed, width and height;
        `animation` is the storage name of a walk's animated WebP.
        """
        with transaction.atomic():
            render = self._locked_if_claimed(token)
            if render is None:
                return False
            render.animation = animation
            rows = Image.objects.bulk_create(
                Image(render=render, party_id=render.party_id, **image) for image in images
            )
            render._finish(self.Status.DONE, images=[row.as_dict() for row in rows])
            return True

    def fail(self, token, code, message):
        return self._end_claimed(token, self.Status.FAILED, error=(code, message[:500]))

    def finish_cancelled(self, token):
        return self._end_claimed(token, self.Status.CANCELLED)

    def finish_filtered(self, token):
        return self._end_claimed(token, self.Status.FILTERED)

    def _end_claimed(self, token, status, **details):
        with transaction.atomic():
            render = self._locked_if_claimed(token)
            if render is None:
                return False
            render._finish(status, **details)
            return True

    def cancel(self, member):
        """Cancel at once if queued; if running, ask the worker to stop at its next step."""
        if not (member.is_prompt_master or self.prompt.author_id == member.pk):
            raise ApiError(
                "forbidden", "Only the Prompt Master or the prompt's author can cancel it.", 403
            )
        with transaction.atomic():
            render = Render.objects.select_for_update().get(pk=self.pk)
            if render.status not in (self.Status.QUEUED, self.Status.RUNNING):
                raise ApiError("render_finished", f"Render {self.pk} has already ended.", 409)
            render.cancel_requested = True
            render.cancel_requested_by = member
            if render.status == self.Status.QUEUED:
                render._finish(self.Status.CANCELLED)
            else:
                render.save(update_fields=["cancel_requested", "cancel_requested_by"])

    def _locked_if_claimed(self, token):
        render = Render.objects.select_for_update().get(pk=self.pk)
        if render.status != self.Status.RUNNING or render.claim_token != token:
            return None
        return render

    def _finish(self, status, *, error=None, images=None):
        """Move into a terminal state and archive the event; the caller holds the row lock."""
        self.status = status
        self.finished_at = timezone.now()
        self.lease_until = None
        if error:
            self.error_code, self.error_message = error
        self.save()
        details = {
            self.Status.DONE: {"images": images}
            | ({"animation": self.animation.url} if self.animation else {}),
            self.Status.FAILED: {"error": {"code": self.error_code, "message": self.error_message}},
            self.Status.CANCELLED: {"by": self.cancel_requested_by_id},
            self.Status.FILTERED: {},
        }[status]
        Party(pk=self.party_id).record(
            f"render.{status}", render=self.pk, prompt=self.prompt_id, **details
        )
        render_finished.send(sender=Render, render=self, images=images)


class ImageQuerySet(models.QuerySet):
    def with_votes(self):
        return self.annotate(vote_count=Count("votes", filter=Q(votes__value=1)))


class Image(models.Model):
    render = models.ForeignKey(Render, on_delete=models.CASCADE, related_name="images")
    party = models.ForeignKey(Party, on_delete=models.CASCADE, related_name="images")
    index = models.PositiveSmallIntegerField()
    file = models.FileField(max_length=200)
    seed = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # CLIP similarity to the prompt and to the party's topic; null until a scorer has seen it.
    score = models.FloatField(null=True, blank=True)
    topic_score = models.FloatField(null=True, blank=True)
    picked_by = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="picks"
    )
    picked_at = models.DateTimeField(null=True, blank=True)
    # The picker's one line on why (shown beside the pick in the gallery and the post).
    pick_note = models.CharField(max_length=200, blank=True)
    # On the Art Expert's shortlist: the candidates the picks are chosen from.
    shortlisted = models.BooleanField(default=False)
    # The L2-normalised CLIP image embedding as float32 bytes, for search by meaning; null
    # when no CLIP model was configured at render time.
    embedding = models.BinaryField(null=True, blank=True, editable=False)
    # Hidden by a moderator: a stream shows it to nobody any more.
    hidden = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ImageQuerySet.as_manager()

    class Meta:
        constraints = [
            # The render id is the idempotency key: running a render twice stores one set.
            models.UniqueConstraint(fields=["render", "index"], name="one_image_per_render_index")
        ]

    def __str__(self):
        return self.file.name

    def as_dict(self):
        return {
            "id": self.pk,
            "render": self.render_id,
            "url": self.file.url,
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "score": self.score,
            "topic_score": self.topic_score,
        }

    def vote(self, member, value):
        if type(value) is not int or value not in (0, 1):  # not True, not 1.0
            raise ApiError("invalid_vote", "value must be 1 (vote) or 0 (take the vote back).")
        with transaction.atomic():
            # Under the party's lock the count below includes every vote committed before, so
            # concurrent votes archive totals that end at the true count.
            self.party.lock()
            if value:
                _, changed = Vote.objects.get_or_create(image=self, member=member)
            else:
                changed = Vote.objects.filter(image=self, member=member).delete()[0] > 0
            if changed:
                votes = Vote.objects.filter(image=self).count()
                self.party.record(
                    "vote.changed", image=self.pk, member=member.pk, value=value, votes=votes
                )

    def pick(self, member, picked=True, note=None):
        """The Art Expert (or the Prompt Master) picks an image, with a one-line note on why.
        Picking a picked image again with a note changes the note; without one keeps it."""
        if not member.may_pick:
            raise ApiError("forbidden", "Only the Art Expert or the Prompt Master picks.", 403)
        if not isinstance(picked, bool):
            raise ApiError("invalid_field", "picked must be true or false.")
        if note is not None:
            if not isinstance(note, str) or len(note.strip()) > 200 or "\n" in note:
                raise ApiError("invalid_note", "note must be one line of at most 200 characters.")
            if not picked:
                raise ApiError("invalid_note", "Only a pick takes a note.")
            note = note.strip()
        with transaction.atomic():
            image = Image.objects.select_for_update().get(pk=self.pk)
            note = "" if not picked else image.pick_note if note is None else note
            if (image.picked_at is not None) == picked and image.pick_note == note:
                return  # already in that state: nothing to archive
            image.picked_by = member if picked else None
            image.picked_at = (image.picked_at or timezone.now()) if picked else None
            image.pick_note = note
            image.save(update_fields=["picked_by", "picked_at", "pick_note"])
            self.party.record(
                "image.picked", image=self.pk, member=member.pk, picked=picked, note=note
            )

    def shortlist(self, member, shortlisted=True):
        """The Art Expert (or the Prompt Master) puts an image on the shortlist, or takes it off."""
        if not member.may_pick:
            raise ApiError("forbidden", "Only the Art Expert or the Prompt Master shortlists.", 403)
        if not isinstance(shortlisted, bool):
            raise ApiError("invalid_field", "shortlisted must be true or false.")
        with transaction.atomic():
            updated = (
                Image.objects.filter(pk=self.pk)
                .exclude(shortlisted=shortlisted)
                .update(shortlisted=shortlisted)
            )
            if updated:
                self.shortlisted = shortlisted
                self.party.record(
                    "image.shortlisted", image=self.pk, member=member.pk, shortlisted=shortlisted
                )


class Upload(models.Model):
    """An image a member uploaded as a source for img2img or as an inpainting mask.

    The file is never the member's bytes: the upload is checked and re-encoded as PNG before it
    is stored, so workers only ever decode images PartyHub wrote itself.
    """

    party = models.ForeignKey(Party, on_delete=models.CASCADE, related_name="uploads")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="uploads")
    file = models.FileField(max_length=200)
    # The format the member sent, as Pillow identified it from the content (PNG, JPEG, WEBP).
    source_format = models.CharField(max_length=10)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.file.name


class Vote(models.Model):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="votes")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="votes")
    value = models.SmallIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "member"], name="one_vote_per_member")
        ]

    def __str__(self):
        return f"{self.member_id} likes {self.image_id}"


class Association(models.Model):
    party = models.ForeignKey(Party, on_delete=models.CASCADE, related_name="associations")
    author = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="associations")
    text = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.text

    def as_dict(self):
        return {"id": self.pk, "text": self.text, "author": self.author_id}


class Event(models.Model):
    """The party's append-only archive: replay, reconnect catch-up and the export read it."""

    party = models.ForeignKey(Party, on_delete=models.CASCADE, related_name="events")
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
