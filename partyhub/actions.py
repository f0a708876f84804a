"""Client messages of protocol v1, checked and handed to the models. Shared by every transport."""

from partyhub import limits
from partyhub.errors import ApiError
from partyhub.models import Member

# type -> (required fields, optional fields)
MESSAGES = {
    "prompt.submit": ({"text"}, {"parent", "params"}),
    "prompt.propose": ({"text"}, {"parent", "params"}),
    "proposal.accept": ({"prompt"}, set()),
    "proposal.set_aside": ({"prompt"}, set()),
    "render.cancel": ({"render"}, set()),
    "vote": ({"image", "value"}, set()),
    "pick": ({"image"}, {"picked", "note"}),
    "shortlist": ({"image"}, {"shortlisted"}),
    "association.add": ({"text"}, set()),
    "palette.add": ({"kind", "text"}, set()),
    "party.steer": ({"steered"}, set()),
    "role.set": ({"member", "role"}, set()),
    "member.mute": ({"member", "muted"}, set()),
    "member.remove": ({"member"}, set()),
}


def handle(member_id, message):
    """Apply one client message for a member; raises ApiError and then changes nothing.

    `message` is parsed and checked JSON (partyhub/inbound.py: no text that cannot be stored)."""
    if not isinstance(message, dict):
        raise ApiError("invalid_message", "A message must be a JSON object.")
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in MESSAGES:
        raise ApiError("unknown_type", f"Unknown message type {_shown(kind)}.")
    required, optional = MESSAGES[kind]
    fields = set(message) - {"type"}
    if missing := sorted(required - fields):
        raise ApiError("missing_field", f"{kind} needs {', '.join(missing)}.")
    if unknown := sorted(fields - required - optional):
        raise ApiError("unknown_field", f"{kind} does not take {', '.join(unknown)}.")
    for name in ("parent", "prompt", "render", "image", "member"):
        if name in message and not _is_id(message[name]) and message[name] is not None:
            raise ApiError("invalid_field", f"{name} must be an id (a positive integer).")

    # Read the member afresh: a role may have changed since the socket connected.
    member = Member.objects.select_related("party").get(pk=member_id)
    member.check_not_removed()
    party = member.party
    members = party.members.filter(removed=False)
    if kind == "prompt.submit":
        # Charged only once the prompt is known to be valid: a refused one costs no quota.
        party.submit_prompt(
            member,
            message["text"],
            message.get("parent"),
            message.get("params"),
            charge=lambda: limits.check_render(member),
        )
    elif kind == "prompt.propose":
        party.propose(member, message["text"], message.get("parent"), message.get("params"))
    elif kind == "proposal.accept":
        _get(party.prompts, message["prompt"], "prompt").accept(member)
    elif kind == "proposal.set_aside":
        _get(party.prompts, message["prompt"], "prompt").set_aside(member)
    elif kind == "render.cancel":
        _get(party.renders, message["render"], "render").cancel(member)
    elif kind == "vote":
        _get(party.images, message["image"], "image").vote(member, message["value"])
    elif kind == "pick":
        image = _get(party.images, message["image"], "image")
        image.pick(member, message.get("picked", True), message.get("note"))
    elif kind == "shortlist":
        image = _get(party.images, message["image"], "image")
        image.shortlist(member, message.get("shortlisted", True))
    elif kind == "association.add":
        party.add_association(member, message["text"])
    elif kind == "palette.add":
        party.add_to_palette(member, message["kind"], message["text"])
    elif kind == "party.steer":
        party.set_steered(member, message["steered"])
    elif kind == "role.set":
        member.set_role(_get(members, message["member"], "member"), message["role"])
    elif kind == "member.mute":
        member.mute(_get(members, message["member"], "member"), message["muted"])
    elif kind == "member.remove":
        member.remove(_get(members, message["member"], "member"))


def _shown(value):
    """A value as an error message quotes it: short, whatever the client sent."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_id(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _get(queryset, pk, what):
    if not _is_id(pk):
        raise ApiError("invalid_field", f"{what} must be an id (a positive integer).")
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise ApiError(f"unknown_{what}", f"No {what} {pk} in this party.", 404)
    return obj
