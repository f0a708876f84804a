"""A render and its lifecycle as a job: queued, claimed under a lease that its worker renews,
then done, failed, cancelled or filtered. The code that runs it is in partyhub/jobs/."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from core.errors import ApiError
from generation.params import images_per_render

# Join codes avoid letters people confuse when reading them off a projector (0/O, 1/I/L).
from partyhub.models.event import record_event
from partyhub.models.image import Image
from partyhub.signals import render_finished


class RenderQuerySet(models.QuerySet):
    def unfinished(self):
        return self.filter(status__in=[Render.Status.QUEUED, Render.Status.RUNNING])

    def lapsed(self):
        """Running renders whose worker stopped renewing its lease: free for another worker."""
        return self.filter(status=Render.Status.RUNNING, lease_until__lt=timezone.now())

    def queues(self):
        """(id, Celery queue) for each render: a stream's renders go to the "streams" queue, a
        party's to the default one."""
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

    party = models.ForeignKey("partyhub.Party", on_delete=models.CASCADE, related_name="renders")
    prompt = models.ForeignKey("partyhub.Prompt", on_delete=models.CASCADE, related_name="renders")
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
        record_event(
            self.party_id,
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
        room = max_images - images_per_render(leader.params)
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
                if images_per_render(render.params) > room:  # a best-of render's candidates
                    continue
                if render.attempts >= settings.RENDER_MAX_ATTEMPTS:
                    continue  # its own delivery ends it as worker_crashed
                render._start(now)
                companions.append(render)
                room -= images_per_render(render.params)
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
            p["steps"] * images_per_render(p) * max(1.0, p["width"] * p["height"] / 512**2)
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

        `images` are dicts with index, file (a storage name), seed, width and height, and
        `set_aside` for a best-of render's candidates it did not keep (`render.done` lists the
        kept ones, in order, and counts the rest); `animation` is the storage name of a walk's
        animated WebP.
        """
        with transaction.atomic():
            render = self._locked_if_claimed(token)
            if render is None:
                return False
            render.animation = animation
            rows = Image.objects.bulk_create(
                Image(render=render, party_id=render.party_id, **image) for image in images
            )
            kept = [row.as_dict() for row in rows if not row.set_aside]
            set_aside = len(rows) - len(kept) if "best_of" in render.params else None
            render._finish(self.Status.DONE, images=kept, set_aside=set_aside)
            return True

    def candidates(self):
        """Every image the render made, the set-aside candidates of a best-of render too, in
        its order (a best-of render's: best first, so `rank` is the index plus one), each with
        whether it was kept: what `GET .../renders/<id>/candidates` answers."""
        best_of = self.params.get("best_of")
        images = Image.rendered.filter(render=self).select_related("render__prompt")
        return {
            "render": self.pk,
            "status": self.status,
            "count": self.params.get("count"),
            "best_of": best_of,
            "candidates": [
                {
                    **image.as_dict(),
                    "rank": image.index + 1 if best_of else None,
                    "kept": not image.set_aside,
                }
                for image in images.order_by("index")
            ],
        }

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

    def _finish(self, status, *, error=None, images=None, set_aside=None):
        """Move into a terminal state and archive the event; the caller holds the row lock.
        `set_aside`: how many candidates a best-of render did not keep (None for others)."""
        self.status = status
        self.finished_at = timezone.now()
        self.lease_until = None
        if error:
            self.error_code, self.error_message = error
        self.save()
        details = {
            self.Status.DONE: {"images": images}
            | ({"animation": self.animation.url} if self.animation else {})
            | ({"set_aside": set_aside} if set_aside is not None else {}),
            self.Status.FAILED: {"error": {"code": self.error_code, "message": self.error_message}},
            self.Status.CANCELLED: {"by": self.cancel_requested_by_id},
            self.Status.FILTERED: {},
        }[status]
        record_event(
            self.party_id, f"render.{status}", render=self.pk, prompt=self.prompt_id, **details
        )
        render_finished.send(sender=Render, render=self, images=images)
