"""Client messages of protocol v1, checked and handed to the models. Shared by every transport.

Each message type is one small function below, registered with the fields it takes."""

from core import limits
from core.errors import ApiError
from partyhub.models import Member, Message, Reaction, Sweep

# type -> (required fields, optional fields)
MESSAGES = {}
# type -> handler(member, party, message), called once the fields are checked
HANDLERS = {}
ID_FIELDS = ("parent", "prompt", "render", "image", "member", "message")


def handle(member_id, message):
    """Apply one client message for a member; raises ApiError and then changes nothing.

    `message` is parsed and checked JSON (core/inbound.py: no text that cannot be stored)."""
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
    for name in ID_FIELDS:
        if name in message and not _is_id(message[name]) and message[name] is not None:
            raise ApiError("invalid_field", f"{name} must be an id (a positive integer).")

    # Read the member afresh: a role may have changed since the socket connected.
    member = Member.objects.select_related("party").get(pk=member_id)
    member.check_not_removed()
    HANDLERS[kind](member, member.party, message)


def handles(kind, required, optional=()):
    """Registers the decorated function as the handler of `kind` messages."""

    def register(handler):
        MESSAGES[kind] = (set(required), set(optional))
        HANDLERS[kind] = handler
        return handler

    return register


@handles("prompt.submit", {"text"}, {"parent", "params", "client_id"})
def _submit(member, party, message):
    # Charged only once the prompt is known to be valid: a refused one (or a repeat) costs no
    # quota.
    party.submit_prompt(
        member,
        message["text"],
        message.get("parent"),
        message.get("params"),
        charge=lambda: limits.check_render(member),
        client_id=message.get("client_id"),
    )


@handles("sweep.submit", {"text", "x"}, {"y", "parent", "params", "client_id"})
def _sweep(member, party, message):
    Sweep.submit(
        party,
        member,
        message["text"],
        message["x"],
        message.get("y"),
        message.get("params"),
        message.get("parent"),
        charge=lambda: limits.check_render(member),
        client_id=message.get("client_id"),
    )


@handles("prompt.propose", {"text"}, {"parent", "params", "client_id"})
def _propose(member, party, message):
    party.propose(
        member,
        message["text"],
        message.get("parent"),
        message.get("params"),
        client_id=message.get("client_id"),
    )


@handles("proposal.accept", {"prompt"})
def _accept(member, party, message):
    _get(party.prompts, message["prompt"], "prompt").accept(member)


@handles("proposal.set_aside", {"prompt"})
def _set_aside(member, party, message):
    _get(party.prompts, message["prompt"], "prompt").set_aside(member)


@handles("render.cancel", {"render"})
def _cancel(member, party, message):
    _get(party.renders, message["render"], "render").cancel(member)


@handles("vote", {"image", "value"})
def _vote(member, party, message):
    _get(party.images, message["image"], "image").vote(member, message["value"])


@handles("pick", {"image"}, {"picked", "note"})
def _pick(member, party, message):
    image = _get(party.images, message["image"], "image")
    image.pick(member, message.get("picked", True), message.get("note"))


@handles("shortlist", {"image"}, {"shortlisted"})
def _shortlist(member, party, message):
    image = _get(party.images, message["image"], "image")
    image.shortlist(member, message.get("shortlisted", True))


@handles("association.add", {"text"})
def _associate(member, party, message):
    party.add_association(member, message["text"])


@handles("palette.add", {"kind", "text"})
def _add_to_palette(member, party, message):
    party.add_to_palette(member, message["kind"], message["text"])


@handles("party.steer", {"steered"})
def _steer(member, party, message):
    party.set_steered(member, message["steered"])


@handles("role.set", {"member", "role"})
def _set_role(member, party, message):
    member.set_role(_other(party, message), message["role"])


@handles("member.mute", {"member", "muted"})
def _mute(member, party, message):
    member.mute(_other(party, message), message["muted"])


@handles("member.remove", {"member"})
def _remove(member, party, message):
    member.remove(_other(party, message))


@handles("chat.send", {"text"}, {"image", "prompt", "client_id"})
def _chat(member, party, message):
    about = _about(party, message, required=False)
    Message.post(
        party,
        member,
        Message.Kind.CHAT,
        message["text"],
        about,
        client_id=message.get("client_id"),
        charge=lambda: limits.check_message(member),
    )


@handles("comment.add", {"text"}, {"image", "prompt", "client_id"})
def _comment(member, party, message):
    Message.post(
        party,
        member,
        Message.Kind.COMMENT,
        message["text"],
        _about(party, message, required=True),
        client_id=message.get("client_id"),
        charge=lambda: limits.check_message(member),
    )


@handles("reaction.set", {"reaction", "on"}, {"image", "prompt"})
def _react(member, party, message):
    about = _about(party, message, required=True)
    Reaction.set(party, member, about, message["reaction"], message["on"])


@handles("message.hide", {"message"}, {"hidden"})
def _hide(member, party, message):
    said = _get(party.messages, message["message"], "message")
    said.set_hidden(member, message.get("hidden", True))


@handles("question.pin", {"text"})
def _pin(member, party, message):
    party.pin_question(member, message["text"])


def _about(party, message, required):
    """The image or prompt of the party a message is about (mentions, or comments on): one of
    the two fields, or with `required` False neither."""
    named = [name for name in ("image", "prompt") if message.get(name) is not None]
    if len(named) > 1 or (required and not named):
        needs = "exactly one" if required else "at most one"
        raise ApiError("invalid_field", f"{message['type']} takes {needs} of image and prompt.")
    if not named:
        return None
    name = named[0]
    return _get(party.images if name == "image" else party.prompts, message[name], name)


def _other(party, message):
    """The member a message is about, among those not removed."""
    return _get(party.members.filter(removed=False), message["member"], "member")


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
