"""The images renders made, what members did with them (votes, picks, the shortlist), and the
images members uploaded as sources."""

from django.db import models, transaction
from django.db.models import Count, Q
from django.utils import timezone

from core.errors import ApiError
from generation import pngmeta

# Join codes avoid letters people confuse when reading them off a projector (0/O, 1/I/L).


class ImageQuerySet(models.QuerySet):
    def with_votes(self):
        return self.annotate(vote_count=Count("votes", filter=Q(votes__value=1)))


class ShownImageManager(models.Manager.from_queryset(ImageQuerySet)):
    """The images a party shows: a best-of render's candidates set aside are left out. The
    default manager (so `party.images` and `render.images` too): the snapshot, the gallery, the
    export, search, votes, picks and "Use" never see them without asking `Image.rendered`."""

    def get_queryset(self):
        return super().get_queryset().filter(set_aside=False)


class Image(models.Model):
    render = models.ForeignKey("partyhub.Render", on_delete=models.CASCADE, related_name="images")
    party = models.ForeignKey("partyhub.Party", on_delete=models.CASCADE, related_name="images")
    index = models.PositiveSmallIntegerField()
    file = models.FileField(max_length=200)
    seed = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # CLIP similarity to the prompt and to the party's topic; null until a scorer has seen it.
    score = models.FloatField(null=True, blank=True)
    topic_score = models.FloatField(null=True, blank=True)
    picked_by = models.ForeignKey(
        "partyhub.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="picks"
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
    # A best-of render's candidate its CLIP ranking did not keep: stored (its render's
    # candidates endpoint lists it) but not one of the party's images. A best-of render stores
    # its candidates best first, so its `index` is its rank less one.
    set_aside = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ShownImageManager()
    rendered = ImageQuerySet.as_manager()  # every image rendered, the set-aside candidates too

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
            "parameters": self.parameters(),
        }

    def parameters(self):
        """The A1111 `parameters` text of the image's PNG, made by the same function the render
        job wrote it with (so clients can show and copy it without reading the file). None for
        a row whose render's params lack a field it needs: only rows made by hand, never by
        the render job, which wrote the PNG from these very params."""
        render = self.render
        try:
            return pngmeta.a1111_parameters(render.prompt.text, render.params, self.seed)
        except KeyError:
            return None

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

    party = models.ForeignKey("partyhub.Party", on_delete=models.CASCADE, related_name="uploads")
    member = models.ForeignKey("partyhub.Member", on_delete=models.PROTECT, related_name="uploads")
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
    member = models.ForeignKey("partyhub.Member", on_delete=models.CASCADE, related_name="votes")
    value = models.SmallIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "member"], name="one_vote_per_member")
        ]

    def __str__(self):
        return f"{self.member_id} likes {self.image_id}"
