"""The party's archive as a ZIP: manifest.json, images/, a static index.html and a post.md draft."""

import json
import tempfile
import zipfile

from django.core.files.storage import default_storage
from django.template.loader import render_to_string
from django.utils import timezone

from generation.pngmeta import with_partyhub_chunk
from partyhub.models import Image, Vote
from partyhub.snapshot import consistent_reads, prompt_tree

FORMAT = "partyhub-export/1"


def build_zip(party):
    """Write the export to a temporary file (on disk once large) and return it, rewound."""
    with consistent_reads():
        manifest = build_manifest(party)
    archive = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for image in manifest["images"]:
            with default_storage.open(image["stored_as"]) as stored:
                data = stored.read()
            # PNGs are already compressed; refresh their provenance with the votes as they are now.
            zf.writestr(
                image["file"],
                with_partyhub_chunk(data, image["provenance"]),
                compress_type=zipfile.ZIP_STORED,
            )
        for render in party.renders.exclude(animation="").order_by("pk"):
            with default_storage.open(render.animation.name) as stored:
                zf.writestr(animation_path(render), stored.read(), compress_type=zipfile.ZIP_STORED)
        for image in manifest["images"]:
            del image["stored_as"], image["provenance"]
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        zf.writestr("index.html", render_to_string("partyhub/export_index.html", gallery(manifest)))
        zf.writestr("post.md", render_to_string("partyhub/export_post.md", gallery(manifest)))
    archive.seek(0)
    return archive


def build_manifest(party):
    members = {m.pk: m for m in party.members.all()}
    prompts = list(party.prompts.order_by("pk"))
    prompt_by_id = {p.pk: p for p in prompts}
    voters = {}
    for image_id, member_id in Vote.objects.filter(image__party=party).values_list(
        "image_id", "member_id"
    ):
        voters.setdefault(image_id, []).append(member_id)
    images = []
    for image in Image.objects.filter(party=party).select_related("render").order_by("pk"):
        prompt = prompt_by_id[image.render.prompt_id]
        lineage = prompt.lineage()
        images.append(
            {
                "id": image.pk,
                "file": f"images/r{image.render_id}-{image.index}.png",
                "render": image.render_id,
                "prompt": prompt.pk,
                "seed": image.seed,
                "width": image.width,
                "height": image.height,
                "score": image.score,
                "topic_score": image.topic_score,
                "votes": len(voters.get(image.pk, [])),
                "voters": voters.get(image.pk, []),
                "picked": image.picked_at is not None,
                "picked_by": image.picked_by_id,
                "stored_as": image.file.name,
                "provenance": {
                    "party": party.code,
                    "render": image.render_id,
                    "prompt": prompt.pk,
                    "lineage": [p.pk for p in lineage],
                    "authors": [members[p.author_id].name for p in lineage],
                    "votes": len(voters.get(image.pk, [])),
                },
            }
        )
    return {
        "format": FORMAT,
        "exported_at": timezone.now().isoformat(),
        "party": {
            "code": party.code,
            "title": party.title,
            "topic": party.topic,
            "public": party.public,
            "created_at": party.created_at.isoformat(),
        },
        "members": [m.as_dict() for m in members.values()],
        "prompts": [p.as_dict() for p in prompts],
        "prompt_tree": prompt_tree(prompts),
        "renders": [
            {**r.as_dict(), "animation": animation_path(r) if r.animation else None}
            for r in party.renders.order_by("pk")
        ],
        "images": images,
        "associations": [a.as_dict() for a in party.associations.order_by("pk")],
        "events": [e.as_message() for e in party.events.order_by("seq")],
    }


def animation_path(render):
    """Where a walk's animated WebP lies inside the ZIP."""
    return f"images/r{render.pk}-walk.webp"


def gallery(manifest):
    """What the static gallery and the blog post show: prompts in order, each with its images."""
    members = {m["id"]: m["name"] for m in manifest["members"]}
    prompts = {p["id"]: p for p in manifest["prompts"]}
    by_prompt = {}
    for image in manifest["images"]:
        by_prompt.setdefault(image["prompt"], []).append(image)
    steps = [
        {
            "prompt": prompt,
            "author": members.get(prompt["author"], "?"),
            "parent_text": prompts[prompt["parent"]]["text"] if prompt["parent"] else None,
            "images": by_prompt.get(prompt["id"], []),
        }
        for prompt in manifest["prompts"]
    ]
    picks = [
        {
            **image,
            "text": prompts[image["prompt"]]["text"],
            "author": members.get(prompts[image["prompt"]]["author"], "?"),
        }
        for image in manifest["images"]
        if image["picked"]
    ]
    return {
        "manifest": manifest,
        "party": manifest["party"],
        "steps": steps,
        "picks": picks,
        "members": manifest["members"],
    }
