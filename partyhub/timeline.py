"""The party's archive as a replay timeline: one human line per archived event.

The replay page and the export both call `timeline()` on the same archived events
(`Event.as_message()` dicts), and a test can call it on plain dicts. Its Django imports are
Member.Role, whose labels are the only copy of the roles' names, REACTIONS, whose emoji are the
only copy of how reactions look, and the tree's names of a sweep's cells, so both say them alike.

A sweep is told as one: its `sweep.added` says what was swept across what, its cells'
`prompt.added` and first `render.queued` get no entry of their own, and what became of each
cell's render (finished, failed, cancelled, held back) names the cell. The entries of a sweep
carry its id as `sweep`.

It is one piece: a few lines per event type, all in one table, sharing what the story has learnt
so far (names, prompts, which prompt a render is of, which reactions were already told).
"""

from partyhub.models import REACTIONS, Member
from partyhub.models.sweep import AXIS_PLURALS
from partyhub.tree import cell_label

# Member.Role's labels as a sentence reads them: the two titles keep their capitals ("made Bob an
# Art Expert"), the other roles are plain words ("is now a participant").
_TITLED = (Member.Role.PROMPT_MASTER, Member.Role.ART_EXPERT)
ROLE_TITLES = {
    role.value: role.label if role in _TITLED else role.label.lower() for role in Member.Role
}
# Prompts are quoted in full up to this many characters, so one entry stays one line.
QUOTE_LENGTH = 80


def timeline(events, members):
    """One entry per event, in the events' order: `{"seq", "at", "type", "who", "text", "images"}`
    (a chat line's or comment's entry also has `said`, see _said), except reactions that only
    repeat or take back an earlier one, which get none (see _reaction_changed).

    `events` are archived events as the protocol sends them (`Event.as_message()`), in seq order;
    `members` maps member ids to names. `who` is the name of the member who acted (`None` when no
    one did, e.g. a render that failed), `text` one line for people, `images` the ids of the
    images that appeared with this event (a finished render's). Names also come from the member
    objects inside the events, so a rename shows from the event that made it. Types this module
    does not know (the protocol may grow) get a generic line; a malformed event never raises.
    """
    story = _Story(members)
    entries = (story.entry(event) for event in events if isinstance(event, dict))
    return [entry for entry in entries if entry is not None]


class _Story:
    """What the timeline has learnt so far: names, prompts and which prompt each render is of."""

    def __init__(self, members):
        self.names = {}
        for key, name in (members or {}).items():
            member_id = _as_id(key)
            if member_id is not None:
                self.names[member_id] = str(name)
        self.prompts = {}  # id -> {"text", "author"}
        self.renders = {}  # render id -> prompt id
        self.reacted = set()  # (member, "image" or "prompt", id, reaction) said once already
        self.cells = {}  # prompt id -> {"sweep": its sweep's id, "label": "Hokusai · seed 1"}
        self.untold = set()  # cells' prompt ids whose first render.queued the sweep's entry told

    def entry(self, event):
        """The event's entry; None for one not worth a line (a describer says so with SKIP)."""
        kind = str(event.get("type", ""))
        describe = DESCRIBERS.get(kind)
        who, text, images, extra = None, None, [], {}
        if describe is not None:
            try:
                described = describe(self, event)
                if described is SKIP:
                    return None
                who, text, images, *rest = described
                extra = rest[0] if rest else {}
            except (KeyError, TypeError, ValueError, AttributeError):
                who, text, images, extra = None, None, [], {}  # malformed: said generically below
        if text is None:
            who, text = self.generic(kind, event)
        return {
            "seq": event.get("seq"),
            "at": event.get("at"),
            "type": kind,
            "who": who,
            "text": text,
            "images": images,
            **extra,
        }

    # --- helpers -------------------------------------------------------------------------------

    def name(self, member_id):
        return self.names.get(_as_id(member_id), "someone")

    def learn_member(self, member):
        """Remember a member object's name; returns (name, previous name or None)."""
        member_id = _as_id(member["id"])
        previous = self.names.get(member_id)
        name = str(member["name"])
        self.names[member_id] = name
        return name, previous

    def learn_prompt(self, prompt):
        self.prompts[_as_id(prompt["id"])] = {
            "text": str(prompt.get("text", "")),
            "author": prompt.get("author"),
            "parent": prompt.get("parent"),
        }
        return self.prompts[_as_id(prompt["id"])]

    def prompt(self, prompt_id):
        return self.prompts.get(_as_id(prompt_id))

    def prompt_of_render(self, event):
        """The prompt a render event is about: its own `prompt` field, else the queued render's."""
        return self.prompt(self._prompt_id_of_render(event))

    def cell_of_render(self, event):
        """The sweep cell a render event is about ({"sweep", "label"}), or None."""
        return self.cells.get(self._prompt_id_of_render(event))

    def _prompt_id_of_render(self, event):
        prompt_id = event.get("prompt")
        if prompt_id is None:
            prompt_id = self.renders.get(_as_id(event.get("render")))
        return _as_id(prompt_id)

    def author_of(self, prompt):
        return self.name(prompt["author"]) if prompt else None

    def generic(self, kind, event):
        """A line for an event type this module does not know: who did it, and what."""
        who = None
        for field in ("by", "member", "author"):
            value = event.get(field)
            if isinstance(value, dict):
                value = value.get("id")
            if _as_id(value) is not None:
                who = self.name(value)
                break
        what = kind.replace(".", " ").replace("_", " ").strip() or "something happened"
        return who, (f"{who}: {what}" if who else what[:1].upper() + what[1:])


# --- one describer per event type: (story, event) -> (who, text, images) -------------------------
# (or (who, text, images, extra fields of the entry), or SKIP: no entry at all)

SKIP = object()


def _member_joined(story, event):
    name, previous = story.learn_member(event["member"])
    if previous is not None and previous != name:
        return name, f"{previous} is now called {name}", []
    role = event["member"].get("role")
    if role == Member.Role.PROMPT_MASTER:
        return name, f"{name} started the party as {ROLE_TITLES[role]}", []
    return name, f"{name} joined", []


def _sweep_added(story, event):
    """ "Ann swept “a chair” across 3 artists × 2 seeds": the sweep's cells, their prompts and
    renders queued with it, in one entry."""
    sweep = event["sweep"]
    sweep_id = _as_id(sweep["id"])
    axes = [sweep["x"], sweep["y"]] if sweep.get("y") else [sweep["x"]]
    sizes = " × ".join(
        f"{len(axis['values'])} {AXIS_PLURALS.get(axis['axis'], axis['axis'])}" for axis in axes
    )
    cells = {
        _as_id(cell["prompt"]): cell_label(sweep, [cell["x"], cell["y"]]) or "cell"
        for cell in sweep["cells"]
    }
    # Learnt once all of it was read: a malformed sweep gets a generic line, its cells their own.
    for prompt_id, label in cells.items():
        story.cells[prompt_id] = {"sweep": sweep_id, "label": label}
        story.untold.add(prompt_id)
    who = story.name(sweep["author"])
    return who, f"{who} swept {quote(sweep['text'])} across {sizes}", [], {"sweep": sweep_id}


def _prompt_added(story, event):
    prompt = story.learn_prompt(event["prompt"])
    if _as_id(event["prompt"]["id"]) in story.cells:
        return SKIP  # a sweep's cell: the sweep's entry told it
    who = story.name(prompt["author"])
    parent = story.prompt(prompt["parent"])
    if parent:
        return who, f"{who} refined {quote(parent['text'])} into {quote(prompt['text'])}", []
    return who, f"{who} wrote {quote(prompt['text'])}", []


def _prompt_proposed(story, event):
    prompt = story.learn_prompt(event["prompt"])
    who = story.name(prompt["author"])
    return who, f"{who} proposed {quote(prompt['text'])}", []


def _proposal_decided(verb):
    def describe(story, event):
        who = story.name(event["by"])
        prompt = story.prompt(event["prompt"])
        if prompt is None:
            return who, f"{who} {verb} a proposal", []
        author = story.author_of(prompt)
        whose = "their own" if author == who else f"{author}’s"
        return who, f"{who} {verb} {whose} proposal {quote(prompt['text'])}", []

    return describe


def _render_queued(story, event):
    render = event["render"]
    prompt_id = _as_id(render.get("prompt"))
    story.renders[_as_id(render["id"])] = prompt_id
    if prompt_id in story.untold:
        story.untold.discard(prompt_id)  # queued with its sweep, which said so; a later one is news
        return SKIP
    prompt = story.prompt(render.get("prompt"))
    what = f"render {render['id']} queued"
    return story.author_of(prompt), (f"{what}: {quote(prompt['text'])}" if prompt else what), []


def _render_done(story, event):
    images = []
    for image in event.get("images") or []:
        image_id = _as_id(image.get("id") if isinstance(image, dict) else image)
        if image_id is not None:
            images.append(image_id)
    count = f"{len(images)} image" + ("" if len(images) == 1 else "s")
    what = "an animation and " if event.get("animation") else ""
    who = story.author_of(story.prompt_of_render(event))
    return _render_entry(
        story, event, who, f"render {event['render']} finished: {what}{count}", "", images
    )


def _render_failed(story, event):
    error = event.get("error") or {}
    reason = error.get("message") or error.get("code") or "an error"
    who = story.author_of(story.prompt_of_render(event))
    return _render_entry(story, event, who, f"render {event['render']} failed", f": {reason}")


def _render_cancelled(story, event):
    if _as_id(event.get("by")) is not None:
        who = story.name(event["by"])
        return _render_entry(story, event, who, f"{who} cancelled render {event['render']}")
    return _render_entry(story, event, None, f"render {event['render']}", " was cancelled")


def _render_filtered(story, event):
    who = story.author_of(story.prompt_of_render(event))
    held = " was held back by the safety checker"
    return _render_entry(story, event, who, f"render {event['render']}", held)


def _render_entry(story, event, who, subject, rest="", images=()):
    """The entry of what became of a render, told as ``subject`` then ``rest``: a sweep cell's
    names the cell between the two ("render 9 failed", " for the sweep’s Hokusai · seed 2",
    ": Out of memory.") and carries the sweep's id."""
    cell = story.cell_of_render(event)
    if cell is None:
        return who, subject + rest, list(images)
    told = f"{subject} for the sweep’s {cell['label']}{rest}"
    return who, told, list(images), {"sweep": cell["sweep"]}


def _vote_changed(story, event):
    who = story.name(event["member"])
    votes = event.get("votes")
    total = f" ({votes} vote{'' if votes == 1 else 's'})" if isinstance(votes, int) else ""
    if event.get("value") == 0:
        return who, f"{who} took back their vote for image {event['image']}{total}", []
    return who, f"{who} voted for image {event['image']}{total}", []


def _image_picked(story, event):
    who = story.name(event["member"])
    if event.get("picked") is False:
        return who, f"{who} unpicked image {event['image']}", []
    note = event.get("note")
    return who, f"{who} picked image {event['image']}" + (f": {quote(note)}" if note else ""), []


def _image_shortlisted(story, event):
    who = story.name(event["member"])
    if event.get("shortlisted") is False:
        return who, f"{who} took image {event['image']} off the shortlist", []
    return who, f"{who} shortlisted image {event['image']}", []


def _association_added(story, event):
    association = event["association"]
    who = story.name(association["author"])
    return who, f"{who} associated {quote(association['text'])}", []


def _palette_added(story, event):
    who = story.name(event["by"])
    entry = event["entry"]
    return who, f"{who} added the {entry['kind']} {quote(entry['text'])} to the palette", []


def _role_changed(story, event):
    member = event["member"]
    name, _ = story.learn_member(member)
    role = ROLE_TITLES.get(member.get("role"), str(member.get("role")))
    article = (
        ""
        if role == ROLE_TITLES[Member.Role.PROMPT_MASTER]
        else ("an " if role[:1] in "AEIOUaeiou" else "a ")
    )
    if _as_id(event.get("by")) in (None, _as_id(member["id"])):
        return name, f"{name} is now {article}{role}", []
    who = story.name(event["by"])
    return who, f"{who} made {name} {article}{role}", []


def _member_muted(story, event):
    member = event["member"]
    name, _ = story.learn_member(member)
    who = story.name(event.get("by"))
    verb = "muted" if member.get("muted", True) else "unmuted"
    return who, f"{who} {verb} {name}", []


def _member_removed(story, event):
    name, _ = story.learn_member(event["member"])
    who = story.name(event.get("by"))
    return who, f"{who} removed {name} from the party", []


def _party_steered(story, event):
    who = story.name(event["by"])
    if event.get("steered"):
        return who, f"{who} steered the party: the others propose, only they render", []
    return who, f"{who} let everyone render", []


def _party_published(story, event):
    who = story.name(event["by"]) if _as_id(event.get("by")) is not None else None
    subject = who or "The party"
    if event.get("published", True) is False:
        return who, f"{subject} took the party’s gallery down", []
    return who, f"{subject} published the party’s gallery", []


# --- the party talks (chat, comments, reactions, moderation, the pinned question) --------------

HIDDEN = "(hidden)"


def _said(message):
    """A message's text on one line, in full (a chat line is short; the replay wraps it); None
    for a hidden one, whose text the archive no longer has.

    Entries of chat lines and comments carry it as `said`, the end of their `text`, so the replay
    can set it apart from PartyHub's own words (its direction is the writer's, not the line's).
    """
    if message.get("hidden") or message.get("text") is None:
        return None
    return " ".join(str(message["text"]).split())


def _about(story, message, preposition):
    """ " about image 12" / " on “a chair”": what a message mentions or belongs to, and the
    images to show beside it."""
    image = _as_id(message.get("image"))
    if image is not None:
        return f" {preposition} image {image}", [image]
    if message.get("prompt") is not None:
        prompt = story.prompt(message["prompt"])
        return f" {preposition} {quote(prompt['text']) if prompt else 'a prompt'}", []
    return "", []


def _message_posted(preposition):
    def describe(story, event):
        message = event["message"]
        who = story.name(message["author"])
        about, images = _about(story, message, preposition)
        said = _said(message)
        return who, f"{who}{about}: {HIDDEN if said is None else said}", images, {"said": said}

    return describe


def _reaction_changed(story, event):
    """ "Ann reacted ❤️ to image 12", once per member, object and reaction: taking a reaction back
    (or giving it again) is not news, and a replay of every tap would drown the party."""
    if event.get("on") is not True:
        return SKIP
    image = _as_id(event.get("image"))
    target = ("image", image) if image is not None else ("prompt", _as_id(event["prompt"]))
    key = (_as_id(event["member"]), *target, event["reaction"])
    if key in story.reacted:
        return SKIP
    story.reacted.add(key)
    who = story.name(event["member"])
    emoji = REACTIONS.get(event["reaction"], str(event["reaction"]))
    if image is not None:
        return who, f"{who} reacted {emoji} to image {image}", [image]
    prompt = story.prompt(event["prompt"])
    return who, f"{who} reacted {emoji} to {quote(prompt['text']) if prompt else 'a prompt'}", []


def _message_hidden(story, event):
    message = event["message"]
    who = story.name(event["by"])
    whose = story.name(message["author"])
    # What this event did is its own `hidden`: the message inside is rewritten whenever the
    # message is hidden or shown again later (an older archive without it: the message's).
    hidden = event.get("hidden", message.get("hidden"))
    if hidden is False:
        return who, f"{who} showed a message by {whose} again", []
    return who, f"{who} hid a message by {whose}", []


def _question_pinned(story, event):
    who = story.name(event["by"])
    if event.get("question") is None:
        return who, f"{who} took the question down", []
    return who, f"{who} pinned the question: {quote(event['question'], length=None)}", []


DESCRIBERS = {
    "member.joined": _member_joined,
    "sweep.added": _sweep_added,
    "prompt.added": _prompt_added,
    "prompt.proposed": _prompt_proposed,
    "proposal.accepted": _proposal_decided("accepted"),
    "proposal.set_aside": _proposal_decided("set aside"),
    "render.queued": _render_queued,
    "render.done": _render_done,
    "render.failed": _render_failed,
    "render.cancelled": _render_cancelled,
    "render.filtered": _render_filtered,
    "vote.changed": _vote_changed,
    "image.picked": _image_picked,
    "image.shortlisted": _image_shortlisted,
    "association.added": _association_added,
    "palette.added": _palette_added,
    "role.changed": _role_changed,
    "member.muted": _member_muted,
    "member.removed": _member_removed,
    "party.steered": _party_steered,
    "party.published": _party_published,
    "chat.posted": _message_posted("about"),
    "comment.added": _message_posted("on"),
    "reaction.changed": _reaction_changed,
    "message.hidden": _message_hidden,
    "question.pinned": _question_pinned,
}


def _as_id(value):
    """An id as an int (JSON object keys arrive as strings); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    return None


def quote(text, length=QUOTE_LENGTH):
    """“text” on one line, cut to `length` characters (None: in full)."""
    text = " ".join(str(text).split())
    if length is not None and len(text) > length:
        text = text[: length - 1].rstrip() + "…"
    return f"“{text}”"
