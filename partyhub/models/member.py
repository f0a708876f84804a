"""A party's members: who holds a browser session in it, under which name and role, and
what each role may do to the others (mute, remove, hand over the Prompt Master role)."""

from django.db import models, transaction
from django.utils import timezone

from core.broadcast import group_send_on_commit
from core.errors import ApiError

MAX_NAME_LENGTH = 99


class MemberQuerySet(models.QuerySet):
    def joined_by(self, session_key):
        """The parties a browser session is in, as its members, newest first, with the party;
        not those it was removed from. (A stream's submitters are members of its backing party
        under `user:<id>` keys, never a session's.)"""
        if not session_key:
            return self.none()
        return (
            self.filter(session_key=session_key, removed=False)
            .select_related("party")
            .order_by("-joined_at", "-pk")
        )


class Member(models.Model):
    class Role(models.TextChoices):
        PROMPT_MASTER = "prompt_master", "Prompt Master"
        ART_EXPERT = "art_expert", "Art Expert"
        PARTICIPANT = "participant", "Participant"
        FACILITATOR = "facilitator", "Facilitator"

    party = models.ForeignKey("partyhub.Party", on_delete=models.CASCADE, related_name="members")
    # A member is whoever holds this browser session; no account is needed to join a party.
    session_key = models.CharField(max_length=40)
    name = models.CharField(max_length=MAX_NAME_LENGTH)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.PARTICIPANT)
    joined_at = models.DateTimeField(default=timezone.now)
    # Set by a facilitator: a muted member still watches and votes but adds no prompts or
    # associations; a removed one is out (kept, since what they made stays in the archive).
    muted = models.BooleanField(default=False)
    removed = models.BooleanField(default=False)

    objects = MemberQuerySet.as_manager()

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
