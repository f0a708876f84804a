"""A prompt: one step of the party's prompt tree, submitted (it renders) or proposed."""

import re

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import ApiError
from generation.params import batch_key

# Join codes avoid letters people confuse when reading them off a projector (0/O, 1/I/L).
from partyhub.models.render import Render
from partyhub.signals import render_queued

CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# What each mode made from its source, as the room and the tree say it.
MODE_WORDS = {"img2img": "redrawn", "inpaint": "repainted", "variation": "varied", "walk": "walk"}


def clean_client_id(client_id):
    """A client's id for its message (None when it sent none), or `invalid_client_id`."""
    if client_id is None:
        return None
    if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
        raise ApiError(
            "invalid_client_id", "client_id must be 1 to 64 letters, digits, '-' or '_'."
        )
    return client_id


def repeat_of(rows, author, client_id):
    """What `author` made among `rows` with the message that carried `client_id` (a prompt, a
    chat line, a sweep), or None: a repeat of that message changes nothing and returns it."""
    if client_id is None:
        return None
    return rows.filter(author=author, client_id=client_id).first()


def one_per_client_id(what):
    """The constraint that keeps one row of an author's per `client_id` (none sent: no limit),
    named `one_<what>_per_client_id`: what `repeat_of` finds a repeat by."""
    return models.UniqueConstraint(
        fields=["author", "client_id"],
        condition=~Q(client_id=""),
        name=f"one_{what}_per_client_id",
    )


class Prompt(models.Model):
    class Status(models.TextChoices):
        SUBMITTED = "submitted"  # rendered (or queued to render)
        PROPOSED = "proposed"  # waiting for the Prompt Master of a steered party
        SET_ASIDE = "set_aside"  # a proposal the Prompt Master did not render

    party = models.ForeignKey("partyhub.Party", on_delete=models.CASCADE, related_name="prompts")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    author = models.ForeignKey("partyhub.Member", on_delete=models.PROTECT, related_name="prompts")
    text = models.CharField(max_length=1000)
    # Fully resolved generation parameters (model, size, steps, seed, ...), never partial.
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SUBMITTED)
    # The prompt whose image this one started from ("Use": a redraw, repaint, variation or a
    # walk from it); the tree shows it there when it refines nothing. Set when it is written.
    source = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="derived"
    )
    # The author's own id for the message that made it: a repeat of the message (a double
    # click, a bot's retry) finds this prompt instead of making another.
    client_id = models.CharField(max_length=64, blank=True)
    # A cell of a sweep's grid (partyhub/models/sweep.py): its column and row (row None for a
    # sweep along one axis).
    sweep = models.ForeignKey(
        "partyhub.Sweep", null=True, blank=True, on_delete=models.CASCADE, related_name="cells"
    )
    cell_x = models.PositiveSmallIntegerField(null=True, blank=True)
    cell_y = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [one_per_client_id("prompt")]

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
            "source": self.source_id,
            "client_id": self.client_id or None,
            "sweep": self.sweep_id,
            "cell": None if self.sweep_id is None else [self.cell_x, self.cell_y],
        }

    @classmethod
    def source_for(cls, party, text, params):
        """The prompt of `party` whose image a new prompt starts from: its `init_image`'s, or for
        a walk the image it starts at (one with the walk's text, seed and model that is not
        itself a walk's frame); None when there is none."""
        if "init_image" in params:
            return party.prompts.filter(renders__images__pk=params["init_image"]).first()
        if params["mode"] == "walk":
            return (
                party.prompts.filter(
                    text=text,
                    params__model=params["model"],
                    renders__images__seed=params["seed"],
                )
                .exclude(params__mode="walk")
                .order_by("pk")
                .first()
            )
        return None

    def queue_render(self):
        """Queue this prompt's render; a worker hears of it once the transaction commits
        (partyhub/jobs/dispatch.py)."""
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
        render_queued.send(sender=Render, render=render)
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
