import math
import re
import string
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from core.broadcast import group_send_on_commit
from core.errors import ApiError, RateLimited, engine_refusals
from generation import tokens
from generation.params import clean_prompt_text
from generation.presets import default_preset, get_preset
from generation.scoring import text_similarity
from partyhub.models import Image, Member, Party, Render

# The backing party's member that the autopilot's prompts belong to.
AUTOPILOT_KEY = "autopilot"


def validate_template(value):
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as error:
        raise ValidationError(f"The template does not parse: {error}.") from None
    if "prompt" not in fields:
        raise ValidationError("The template must contain {prompt}, where the submission goes.")
    if fields - {"prompt", "topic"}:
        raise ValidationError("The template may only use {prompt} and {topic}.")


class Stream(models.Model):
    """A public, never-ending flow of images on one topic.

    Its renders, images and archive live in a backing public party (`party`), so streams reuse
    the whole render path: jobs, batching, previews, scores, storage and provenance.
    """

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    topic = models.CharField(max_length=200)
    # Every submission is rendered through this: "{prompt}" is the submission, "{topic}" the topic.
    prompt_template = models.CharField(
        max_length=500, default="{prompt}, {topic}", validators=[validate_template]
    )
    style = models.CharField(max_length=300, blank=True, help_text="appended to every prompt")
    negative = models.CharField(max_length=500, blank=True, help_text="the negative prompt")
    model = models.CharField(max_length=50, blank=True, help_text="a preset; empty: the default")
    cadence = models.FloatField(default=6.0, help_text="target images per minute")
    vocabulary = models.TextField(blank=True, help_text="autopilot words, one per line")
    blocked_words = models.TextField(blank=True, help_text="refused words, one per line")
    active = models.BooleanField(default=True)
    min_topic_similarity = models.FloatField(
        default=0.15, help_text="CLIP text similarity to the topic a submission needs"
    )
    min_image_topic_score = models.FloatField(
        default=0.18, help_text="CLIP image-topic similarity below which an image is not shown"
    )
    duplicate_similarity = models.FloatField(
        default=0.95, help_text="an autopilot image this close to a recent one is skipped"
    )
    max_in_flight = models.PositiveSmallIntegerField(
        default=2, help_text="submissions rendering at once; the rest wait in the fair queue"
    )
    party = models.OneToOneField(Party, on_delete=models.PROTECT, related_name="stream")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        with transaction.atomic():
            if self.party_id is None:  # a new stream gets its backing public party
                self.party = Party.create_with_fresh_code(
                    topic=self.topic, title=self.title, public=True
                )
            super().save(*args, **kwargs)

    def get_absolute_url(self):
        return f"/s/{self.slug}/"

    def clean(self):
        """Refuse a template, topic and style, or a negative prompt, that the model's text
        encoder cannot read whole: every submission would be refused, the autopilot silent."""
        preset = self.text_preset()
        try:
            bound = self.bind("")
        except (IndexError, KeyError, ValueError):
            return  # the template's own validator says what is wrong with it
        if preset is None:
            return
        checks = {
            "prompt_template": ("The template with the topic and style", bound),
            "negative": ("The negative prompt", self.negative),
        }
        errors = {}
        for name, (label, text) in checks.items():
            message = tokens.too_long(preset, label, text)
            if message:
                errors[name] = message
        if errors:
            raise ValidationError(errors)

    @property
    def group(self):
        """The channel-layer group of this stream's viewers."""
        return f"stream.{self.pk}"

    @classmethod
    def create(cls, **fields):
        stream = cls(**fields)
        stream.full_clean(exclude=["party"])
        stream.save()
        return stream

    def images(self):
        """The stream's visible images, with what a viewer is shown about each."""
        return Image.objects.filter(party_id=self.party_id, hidden=False).select_related(
            "render__prompt__author"
        )

    def hide(self, image_id):
        """A moderator hides an image: it leaves every viewer's screen at once."""
        with transaction.atomic():
            hidden = Image.objects.filter(party_id=self.party_id, pk=image_id).update(hidden=True)
            if not hidden:
                raise ApiError("unknown_image", f"No image {image_id} in this stream.", 404)
            group_send_on_commit(self.group, {"type": "stream.hidden", "image": image_id})

    def submit(self, user, text):
        """A signed-in user's prompt, checked and put in the fair queue; returns the submission
        and its place in the queue (0: next)."""
        if Ban.objects.filter(user=user).exists():
            raise ApiError("banned", "A moderator stopped this account from submitting.", 403)
        with engine_refusals(422):  # the streams API answers 422 for a prompt it cannot take
            text = clean_prompt_text(text)
        self.refuse_blocked_words(text)
        self.refuse_too_long(text)
        _refuse_over_rate(user)
        similarity = text_similarity(text, self.topic)
        if similarity is not None and similarity < self.min_topic_similarity:
            raise ApiError(
                "off_topic",
                f"This stream is about {self.topic}; the prompt is too far from it.",
                422,
            )
        submission = Submission.objects.create(stream=self, user=user, text=text)
        self.dispatch()
        submission.refresh_from_db()
        waiting = self.fair_order()
        return submission, waiting.index(submission) if submission in waiting else 0

    def fair_order(self):
        """Waiting submissions in the order they will render: round-robin across users, each
        user's oldest first, users who waited longest since their last render first."""
        waiting = list(self.submissions.filter(status=Submission.Status.WAITING).order_by("pk"))
        last_sent = dict(
            self.submissions.exclude(status=Submission.Status.WAITING)
            .values("user")
            .annotate(last=models.Max("pk"))
            .values_list("user", "last")
        )
        queues = {}
        for submission in waiting:
            queues.setdefault(submission.user_id, []).append(submission)
        users = sorted(queues, key=lambda user: (last_sent.get(user, 0), queues[user][0].pk))
        order = []
        while any(queues[user] for user in users):
            order += [queues[user].pop(0) for user in users if queues[user]]
        return order

    def dispatch(self):
        """Start renders for the next submissions while fewer than `max_in_flight` run."""
        with transaction.atomic():
            # The stream's row lock: two processes dispatching at once take turns.
            Stream.objects.select_for_update().get(pk=self.pk)
            running = self.party.renders.unfinished().count()
            for submission in self.fair_order()[: max(self.max_in_flight - running, 0)]:
                submission.start()

    def queue_render(self, author_key, author_name, text):
        """Render `text`, bound to the stream, as its backing party's member `author_key`."""
        author, _ = Member.objects.get_or_create(
            party=self.party, session_key=author_key, defaults={"name": author_name}
        )
        params = {"negative": self.negative} if self.negative else {}
        if self.model:
            params["model"] = self.model
        _, render = self.party.submit_prompt(author, self.bind(text), params=params)
        return render

    def bind(self, submission):
        """The prompt actually rendered: the submission inside the stream's template and style."""
        prompt = self.prompt_template.format(prompt=submission.strip(), topic=self.topic)
        return f"{prompt}, {self.style}" if self.style else prompt

    def text_preset(self):
        """The preset that renders the stream's prompts, if it is on this server (an unknown or
        unavailable model fails its renders, and is not for the token count to judge)."""
        preset = get_preset(self.model) if self.model else default_preset()
        return preset if preset is not None and preset.is_available() else None

    def fits(self, text):
        """Whether `text`, bound to the stream, reaches the model's text encoder whole."""
        preset = self.text_preset()
        return preset is None or tokens.too_long(preset, "text", self.bind(text)) is None

    def refuse_too_long(self, text):
        """What is counted is what the encoder reads: the submission inside the template, with
        the style; 422 `prompt_too_long` like the streams API's other refused prompts."""
        preset = self.text_preset()
        if preset is not None:
            field = "text, with this stream's topic and style added,"
            with engine_refusals(422):
                tokens.refuse_too_long(preset, field, self.bind(text))

    def refuse_blocked_words(self, text):
        words = set(re.findall(r"[\w']+", text.lower()))
        blocked = {w.strip().lower() for w in self.blocked_words.splitlines() if w.strip()}
        if words & blocked:
            raise ApiError(
                "invalid_prompt", "The prompt uses a word this stream does not allow.", 422
            )


def image_message(image):
    """`stream.image` for one image (URLs only, never bytes)."""
    prompt = image.render.prompt
    return {
        "type": "stream.image",
        "image": {
            "id": image.pk,
            "url": image.file.url,
            "prompt": prompt.text,
            "author": prompt.author.name,
            "autopilot": prompt.author.session_key == AUTOPILOT_KEY,
            "score": image.score,
        },
    }


class Submission(models.Model):
    """A signed-in user's prompt for a stream, waiting in the fair queue until it renders."""

    class Status(models.TextChoices):
        WAITING = "waiting"
        RENDERING = "rendering"

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="submissions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.CharField(max_length=1000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    render = models.OneToOneField(Render, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.text

    def start(self):
        self.render = self.stream.queue_render(
            f"user:{self.user_id}", self.user.get_username(), self.text
        )
        self.status = self.Status.RENDERING
        self.save(update_fields=["render", "status"])


def _refuse_over_rate(user):
    limit = settings.PARTYHUB_STREAM_SUBMISSIONS_PER_MINUTE
    since = timezone.now() - timedelta(minutes=1)
    recent = list(
        Submission.objects.filter(user=user, created_at__gt=since)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(recent) >= limit:
        # Free again once the oldest of the last `limit` leaves the minute.
        wait = (recent[-1] + timedelta(minutes=1) - timezone.now()).total_seconds()
        raise RateLimited(math.ceil(max(wait, 1)), "prompts")


class Ban(models.Model):
    """A user a moderator stopped from submitting to streams."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.user} ({self.reason or 'banned'})"
