"""What a publication quotes of the party's conversation, and what the export carries of it.

The manifest holds every message (a hidden one without its text) and every reaction. The pages
drawn from it (the ZIP's index.html and post.md, the public gallery) quote the chat and the
comments around each pick, credited to their authors, but never a hidden message: not its text
(the manifest has none), not that it was there, not that it was hidden.
"""

from collections import Counter

from partyhub.models import REACTIONS, Message, Reaction
from partyhub.timeline import quote

# The chat lines a pick's discussion quotes: the most recent ones, the rest counted.
CHAT_LINES = 8


def conversation(party, include_hidden=True):
    """The manifest's `messages` (hidden ones too, text null: the archive says something was
    said there) and `reactions`; without `include_hidden`, none about an image a moderator hid
    (from a stream: a public page does not show it)."""
    messages = Message.objects.filter(party=party)
    reactions = Reaction.objects.filter(party=party)
    if not include_hidden:
        messages, reactions = (
            messages.exclude(image__hidden=True),
            reactions.exclude(image__hidden=True),
        )
    return {
        "messages": [m.as_dict() for m in messages.order_by("pk")],
        "reactions": [
            {
                "image": r.image_id,
                "prompt": r.prompt_id,
                "reaction": r.reaction,
                "member": r.member_id,
            }
            for r in reactions.order_by("pk")
        ],
    }


def reactions_by_image(manifest):
    """{image id: [{"reaction", "emoji", "count"}]}, the reactions in the room's order."""
    counts = {}
    for reaction in manifest.get("reactions", []):
        if reaction["image"] is not None:
            counts.setdefault(reaction["image"], Counter())[reaction["reaction"]] += 1
    return {
        image: [
            {"reaction": name, "emoji": emoji, "count": count[name]}
            for name, emoji in REACTIONS.items()
            if count[name]
        ]
        for image, count in counts.items()
    }


def quotable(manifest, names):
    """The messages a page may quote (none hidden), in the order said, each with its author's
    name and the seq it was archived at (0: unknown)."""
    seq_of = {
        event["message"]["id"]: event["seq"]
        for event in manifest["events"]
        if event["type"] in ("chat.posted", "comment.added")
    }
    return [
        {
            **message,
            "author_name": names.get(message["author"], "?"),
            "seq": seq_of.get(message["id"], 0),
        }
        for message in manifest.get("messages", [])
        if not message["hidden"] and message["text"] is not None
    ]


def published_events(events, said):
    """The archive as a publication tells it: without the events of messages hidden now, and
    without moderation (a message hidden or shown again is the room's business)."""
    shown = {message["id"] for message in said}
    return [
        event
        for event in events
        if event["type"] != "message.hidden"
        and (
            event["type"] not in ("chat.posted", "comment.added") or event["message"]["id"] in shown
        )
    ]


class Talk:
    """The conversation in a publication's context (see tell): what was said around each image
    whose story a page tells, the reactions, who said how much."""

    def __init__(self, manifest, images, said):
        self.manifest, self.images, self.said = manifest, images, said
        events = manifest["events"]
        self.prompt_seq = {
            e["prompt"]["id"]: e["seq"]
            for e in events
            if e["type"] in ("prompt.added", "prompt.proposed")
        }
        self.done_seq = {e["render"]: e["seq"] for e in events if e["type"] == "render.done"}
        self.image_names = {image["id"]: image["name"] for image in images}
        self.prompt_texts = {p["id"]: p["text"] for p in manifest["prompts"]}

    def tell(self, stories, credits):
        """Adds the conversation to a publication's context: each image's reactions, each
        story's discussion (on its image too, which the pages show in its caption), and how
        many chat lines and comments each credited person wrote (none hidden)."""
        reactions = reactions_by_image(self.manifest)
        for image in self.images:
            image["reactions"] = reactions.get(image["id"], [])
        for story in stories:
            story["talk"] = story["image"]["talk"] = self.about(story["image"])
        kinds = Counter((message["author"], message["kind"]) for message in self.said)
        for credit in credits:
            credit["chat_lines"] = kinds[credit["member"], "chat"]
            credit["comments"] = kinds[credit["member"], "comment"]

    def about(self, image):
        """The comments on the image and on its prompt; then the chat lines said while it was
        made (after its prompt was archived, before its render finished) or that mention it or
        its prompt: the last CHAT_LINES of them, and how many earlier ones are not quoted.
        None when nobody said anything."""
        start, end = self.prompt_seq.get(image["prompt"]), self.done_seq.get(image["render"])

        def on_it(message):
            return message["image"] == image["id"] or message["prompt"] == image["prompt"]

        def while_made(message):
            return start is not None and end is not None and start < message["seq"] < end

        comments = [m for m in self.said if m["kind"] == "comment" and on_it(m)]
        chat = [m for m in self.said if m["kind"] == "chat" and (on_it(m) or while_made(m))]
        chat.sort(key=lambda message: (message["seq"], message["id"]))
        if not comments and not chat:
            return None
        return {
            "comments": [self.line(image, m) for m in comments],
            "chat": [self.line(image, m) for m in chat[-CHAT_LINES:]],
            "earlier": max(0, len(chat) - CHAT_LINES),
        }

    def line(self, image, message):
        """A message as quoted: who, what, and what it is about where that is not plain (a line
        said while an image was made may be about another one)."""
        return {
            "id": message["id"],
            "author_name": message["author_name"],
            "text": message["text"],
            "about": self.about_what(image, message),
        }

    def about_what(self, image, message):
        if message["image"] == image["id"]:
            return "" if message["kind"] == "comment" else "about this image"
        if message["prompt"] == image["prompt"]:
            return "on its prompt" if message["kind"] == "comment" else "about its prompt"
        if message["image"] is not None:
            name = self.image_names.get(message["image"])
            return f"about image {name}" if name else "about another image"
        if message["prompt"] is not None:
            return f"about {quote(self.prompt_texts.get(message['prompt'], ''), length=60)}"
        return ""
