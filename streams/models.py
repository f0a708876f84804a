import re
import string

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from partyhub.errors import ApiError
from partyhub.models import Image, Party, new_join_code


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
    party = models.OneToOneField(Party, on_delete=models.PROTECT, related_name="stream")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        with transaction.atomic():
            if self.party_id is None:  # a new stream gets its backing public party
                self.party = Party.objects.create(
                    code=_free_code(), topic=self.topic, title=self.title, public=True
                )
            super().save(*args, **kwargs)

    def get_absolute_url(self):
        return f"/s/{self.slug}/"

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
        """The stream's images, with what a viewer is shown about each."""
        return Image.objects.filter(party_id=self.party_id).select_related("render__prompt__author")

    def bind(self, submission):
        """The prompt actually rendered: the submission inside the stream's template and style."""
        prompt = self.prompt_template.format(prompt=submission.strip(), topic=self.topic)
        return f"{prompt}, {self.style}" if self.style else prompt

    def refuse_blocked_words(self, text):
        words = set(re.findall(r"[\w']+", text.lower()))
        blocked = {w.strip().lower() for w in self.blocked_words.splitlines() if w.strip()}
        if words & blocked:
            raise ApiError("invalid_prompt", "The prompt uses a word this stream does not allow.")


def _free_code():
    for _ in range(10):
        code = new_join_code()
        if not Party.objects.filter(code=code).exists():
            return code
    raise RuntimeError("could not find a free join code")


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
            "autopilot": False,
            "score": image.score,
        },
    }
