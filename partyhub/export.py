"""The party as a publication: the export ZIP (manifest.json, watermarked images/, a static
index.html, a post.md draft, a contact sheet for print) and what the public gallery shows.

Both the ZIP's index.html and the gallery page /g/<code>/ are drawn from the manifest by
`publication()`: the ZIP with image paths inside the ZIP, the gallery with the stored files' URLs.
"""

import json
import tempfile
import zipfile
from datetime import datetime

from django.contrib.staticfiles import finders
from django.core.files.storage import default_storage
from django.template.loader import render_to_string
from django.utils import timezone

from partyhub import discussion, sweep_grid, watermark
from partyhub.contact_sheet import contact_sheet
from partyhub.models import Image, Vote
from partyhub.provenance import best_of_note, lineage, provenance
from partyhub.snapshot import consistent_reads, prompt_tree
from partyhub.timeline import timeline
from partyhub.tree import bare_word, tree_svg, word_diff
from partyhub.zip_names import animation_path, download_name, entry_name, image_path

# 2: picks' notes, the shortlist, prompt status, credits, watermark flags, the contact sheet
# (all additions: a reader of format 1 reads format 2).
# 3: the conversation: the pinned question, every message (hidden ones without their text),
# the reactions, and each credit's messages (additions again: a reader of 2 reads 3).
FORMAT = "partyhub-export/3"
CONTACT_SHEET = "contact-sheet.png"
REPLAY_SCRIPT = "replay.js"
__all__ = ["FORMAT", "build_manifest", "build_zip", "download_name", "entry_name", "publication"]


def build_zip(party):
    """Write the export to a temporary file (on disk once large) and return it, rewound."""
    with consistent_reads():
        manifest = build_manifest(party)
        animations = [
            (animation_path(render), render.animation.name)
            for render in party.renders.exclude(animation="").order_by("pk")
        ]
    archive = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        sheet, first_images = [], {}
        for image in manifest["images"]:
            with default_storage.open(image.pop("stored_as")) as stored:
                data = stored.read()
            # The provenance chunk gets the votes as they are now; pixels large enough get the
            # invisible watermark; `parameters` stays as stored.
            data, image["watermarked"] = watermark.watermark_png(
                data, {"partyhub": json.dumps(image.pop("provenance"), separators=(",", ":"))}
            )
            # PNGs are already compressed.
            zf.writestr(image["file"], data, compress_type=zipfile.ZIP_STORED)
            sheet.append(data)
            first_images.setdefault(image["prompt"], data)
        for sweep in manifest["sweeps"]:
            grid = sweep_grid.grid_png(sweep, first_images)
            zf.writestr(sweep["file"], grid, compress_type=zipfile.ZIP_STORED)
        for path, stored_name in animations:
            with default_storage.open(stored_name) as stored:
                zf.writestr(path, stored.read(), compress_type=zipfile.ZIP_STORED)
        page = publication(manifest)
        zf.writestr(
            entry_name(CONTACT_SHEET),
            contact_sheet(page, sheet),
            compress_type=zipfile.ZIP_STORED,
        )
        zf.writestr(entry_name("manifest.json"), json.dumps(manifest, indent=2, ensure_ascii=False))
        zf.writestr(entry_name(REPLAY_SCRIPT), replay_script())
        zf.writestr(entry_name("index.html"), render_to_string("partyhub/export_index.html", page))
        zf.writestr(entry_name("post.md"), render_to_string("partyhub/export_post.md", page))
    archive.seek(0)
    return archive


def replay_script():
    """static/partyhub/replay.js, shipped beside index.html: a page opened from file:// can
    load a script next to it but cannot fetch JSON, so the timeline is embedded in the page."""
    with open(finders.find("partyhub/replay.js"), encoding="utf-8") as script:
        return script.read()


def build_manifest(party, include_hidden=True):
    """The whole party as JSON (docs/manifest.schema.json). Each image also carries
    `stored_as` (its storage name) and `provenance` (its `partyhub` PNG chunk) for the caller,
    which removes them; `watermarked` is filled in by whoever writes the files (the ZIP)."""
    members = {m.pk: m for m in party.members.order_by("pk")}
    prompts = list(party.prompts.order_by("pk"))
    prompt_by_id = {p.pk: p for p in prompts}
    voters = {}
    for image_id, member_id in Vote.objects.filter(image__party=party, value=1).values_list(
        "image_id", "member_id"
    ):
        voters.setdefault(image_id, []).append(member_id)
    rows = Image.objects.filter(party=party).select_related("render").order_by("pk")
    if not include_hidden:
        rows = rows.filter(hidden=False)
    images = []
    for image in rows:
        prompt = prompt_by_id[image.render.prompt_id]
        votes = len(voters.get(image.pk, []))
        images.append(
            {
                "id": image.pk,
                "file": image_path(image),
                "render": image.render_id,
                "prompt": prompt.pk,
                "seed": image.seed,
                "width": image.width,
                "height": image.height,
                "score": image.score,
                "topic_score": image.topic_score,
                "votes": votes,
                "voters": voters.get(image.pk, []),
                "picked": image.picked_at is not None,
                "picked_by": image.picked_by_id,
                "picked_at": image.picked_at.isoformat() if image.picked_at else None,
                "note": image.pick_note,
                "shortlisted": image.shortlisted,
                "watermarked": False,
                "stored_as": image.file.name,
                "provenance": provenance(
                    party_code=party.code,
                    render_id=image.render_id,
                    lineage=lineage(prompt, parent_of=lambda p: prompt_by_id.get(p.parent_id)),
                    author_of=lambda p: members[p.author_id].name,
                    votes=votes,
                )
                | best_of_note(image.render.params, image.index),
            }
        )
    associations = list(party.associations.order_by("pk"))
    talk = discussion.conversation(party, include_hidden)
    return {
        "format": FORMAT,
        "exported_at": timezone.now().isoformat(),
        "party": {
            "code": party.code,
            "title": party.title,
            "topic": party.topic,
            "public": party.public,
            "steered": party.steered,
            "published": party.published_at is not None,
            "created_at": party.created_at.isoformat(),
            "question": party.question or None,
        },
        "members": [m.as_dict() for m in members.values()],
        "prompts": [p.as_dict() for p in prompts],
        "prompt_tree": prompt_tree(prompts),
        "renders": [
            {**r.as_dict(), "animation": animation_path(r) if r.animation else None}
            for r in party.renders.order_by("pk")
        ],
        "images": images,
        "associations": [a.as_dict() for a in associations],
        "sweeps": [sweep_grid.manifest_entry(sweep) for sweep in party.sweeps.order_by("pk")],
        **talk,  # messages, reactions
        "credits": _credits(members, prompts, associations, images, talk["messages"]),
        "watermark": {
            "method": watermark.METHOD,
            "message": watermark.MESSAGE.decode(),
            "bits": watermark.BITS,
            "min_pixels": watermark.MIN_PIXELS,
        },
        "contact_sheet": entry_name(CONTACT_SHEET),
        "events": [e.as_message() for e in party.events.order_by("seq")],
    }


def _credits(members, prompts, associations, images, messages):
    """Who contributed what: per member, the ids of their prompts, associations, votes, picks."""
    credits = {
        pk: {
            "member": pk,
            "name": m.name,
            "role": m.role,
            "prompts": [],
            "associations": [],
            "votes": [],
            "picks": [],
            "messages": [],  # chat lines and comments, hidden ones too
        }
        for pk, m in members.items()
    }
    for prompt in prompts:
        credits[prompt.author_id]["prompts"].append(prompt.pk)
    for association in associations:
        credits[association.author_id]["associations"].append(association.pk)
    for image in images:
        for voter in image["voters"]:
            credits[voter]["votes"].append(image["id"])
        if image["picked_by"] in credits:
            credits[image["picked_by"]]["picks"].append(image["id"])
    for message in messages:
        credits[message["author"]]["messages"].append(message["id"])
    return list(credits.values())


# --- What the pages show ----------------------------------------------------------------------


def publication(manifest, url_of=None, tree_width=760):
    """The context of index.html, post.md, the contact sheet and the public gallery.

    url_of(image) is where a page finds an image: by default its path inside the ZIP.
    """
    names = {m["id"]: m["name"] for m in manifest["members"]}
    images = _shown_images(manifest, url_of or (lambda image: image["file"]), names)
    picks = [image for image in images if image["picked"]]
    shortlist = [image for image in images if image["shortlisted"] and not image["picked"]]
    steps = _steps(manifest["prompts"], images, names)
    associations = _associations(manifest, names)
    best = _best_first(images)
    # What was said, as published: never a hidden message, nor that one was there.
    said = discussion.quotable(manifest, names)
    entries = timeline(discussion.published_events(manifest["events"], said), names)
    stories = _stories(picks or shortlist, steps, associations, manifest["events"])
    credits = _shown_credits(manifest, images)
    discussion.Talk(manifest, images, said).tell(stories, credits)
    return {
        "manifest": manifest,
        "party": manifest["party"],
        "title": manifest["party"]["title"] or manifest["party"]["topic"],
        "created": datetime.fromisoformat(manifest["party"]["created_at"]),
        # The party's people: a member a facilitator removed is not one of them any more (their
        # prompts keep their name).
        "members": [m for m in manifest["members"] if not m["removed"]],
        "images": images,
        "picks": picks,
        "shortlist": shortlist,
        "cover": best[0] if best else None,
        "steps": steps,
        "stories": stories,
        "stories_of_picks": bool(picks),
        "associations": associations,
        "words": _words(associations),
        "credits": credits,
        "watermarked": sum(1 for image in images if image["watermarked"]),
        "tree": tree_svg(
            manifest["prompts"],
            _thumbnails(best),
            authors=names,
            width=tree_width,
            sweeps=manifest.get("sweeps"),  # absent from manifests of before sweeps
        ),
        "entries": entries,
        "replay": {
            "entries": entries,
            "images": {image["id"]: image["url"] for image in images},
        },
    }


def _shown_images(manifest, url_of, names):
    """The manifest's images with where a page finds them, their prompt's text and who is who."""
    roles = {m["id"]: m["role"] for m in manifest["members"]}
    prompts = {p["id"]: p for p in manifest["prompts"]}
    return [
        {
            **image,
            "url": url_of(image),
            "text": prompts[image["prompt"]]["text"],
            "author": names.get(prompts[image["prompt"]]["author"], "?"),
            "picker": names.get(image["picked_by"], ""),
            "picker_role": roles.get(image["picked_by"], ""),
            "name": image["file"].rsplit("/", 1)[-1].removesuffix(".png"),
            # One line, for Markdown headings and image descriptions.
            "line": " ".join(prompts[image["prompt"]]["text"].split()),
        }
        for image in manifest["images"]
    ]


def _steps(prompts, images, names):
    """One step of the prompt tree per prompt: the words it added to and removed from its
    parent's, and its images."""
    by_id = {p["id"]: p for p in prompts}
    by_prompt = {}
    for image in images:
        by_prompt.setdefault(image["prompt"], []).append(image)
    steps = []
    for prompt in prompts:
        parent = by_id.get(prompt["parent"])
        tokens, removed = word_diff(parent["text"] if parent else None, prompt["text"])
        steps.append(
            {
                "prompt": prompt,
                "author": names.get(prompt["author"], "?"),
                "parent_text": parent["text"] if parent else None,
                # Listed only for a refinement that kept some of its parent's words.
                "added": [bare_word(w) for w, added in tokens if added]
                if parent and not all(added for _, added in tokens)
                else [],
                "removed": [bare_word(word) for word in removed],
                "images": by_prompt.get(prompt["id"], []),
            }
        )
    return steps


def _seqs(events, types, kind):
    """{id of the event's `kind` object: the seq of the (last) event of one of `types`}."""
    return {event[kind]["id"]: event["seq"] for event in events if event["type"] in types}


def _associations(manifest, names):
    """The associations with their author's name and the seq they were said at (0: unknown)."""
    seq_of = _seqs(manifest["events"], ("association.added",), "association")
    return [
        {**a, "author_name": names.get(a["author"], "?"), "seq": seq_of.get(a["id"], 0)}
        for a in manifest["associations"]
    ]


def _words(associations):
    """The board's words: one per text without case, counted by the people who said it."""
    words = {}
    for association in associations:
        word = words.setdefault(association["text"].lower(), {"text": association["text"]})
        word.setdefault("authors", []).append(association["author_name"])
    return sorted(words.values(), key=lambda word: (-len(word["authors"]), word["text"].lower()))


def _stories(images, steps, associations, events):
    """Per image, the steps of its lineage, each with the associations that came up before its
    prompt was written (by the archive's order) and after the step before it."""
    seq_of_prompt = _seqs(events, ("prompt.added", "prompt.proposed"), "prompt")
    step_of = {step["prompt"]["id"]: step for step in steps}
    stories = []
    for image in images:
        chain = lineage(
            step_of[image["prompt"]], parent_of=lambda step: step_of.get(step["prompt"]["parent"])
        )
        story, after = [], 0
        for step in chain:
            before = seq_of_prompt.get(step["prompt"]["id"], after)
            said = [a for a in associations if after < a["seq"] < before]
            story.append({**step, "associations": said})
            after = before
        stories.append({"image": image, "steps": story})
    return stories


def _shown_credits(manifest, images):
    """The manifest's credits with the texts of the prompts and associations and the images."""
    by_id = {image["id"]: image for image in images}
    texts = {p["id"]: p["text"] for p in manifest["prompts"]}
    said = {a["id"]: a["text"] for a in manifest["associations"]}
    return [
        {
            **credit,
            "prompt_texts": [texts[pk] for pk in credit["prompts"]],
            "association_texts": [said[pk] for pk in credit["associations"]],
            "voted_images": [by_id[pk] for pk in credit["votes"] if pk in by_id],
            "picked_images": [by_id[pk] for pk in credit["picks"] if pk in by_id],
        }
        for credit in manifest["credits"]
    ]


def _best_first(images):
    """Picks first, then by votes, then oldest: the cover is the first."""
    return sorted(images, key=lambda image: (not image["picked"], -image["votes"], image["id"]))


def _thumbnails(best):
    """{prompt id: its images' URLs, best first}, for the tree's nodes."""
    thumbs = {}
    for image in best:
        thumbs.setdefault(image["prompt"], []).append(image["url"])
    return thumbs
