"""Where a finished render's files go: each image a PNG with the A1111 `parameters` and the
`partyhub` provenance chunks (generation/pngmeta.py), a walk's frames also one animated WebP."""

import io
from concurrent.futures import ThreadPoolExecutor

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from generation import pngmeta
from partyhub.provenance import best_of_note, lineage, provenance

WALK_FRAME_MS = 120  # how long each frame of a walk's animation shows
# PNG encoding and storage writes run here, beside the model, not one after another.
_storage_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="partyhub-store")


def store_images(render, images, seeds):
    """Encode and store a render's images (PNG with its parameters and provenance); the rows
    `Render.complete` records, in order."""
    return [future.result() for future in start_storing(render, images, seeds)]


def start_storing(render, images, seeds):
    """`store_images` begun in the pool: a future for each row, in order. A batch starts every
    render's images before it waits for the first, so that all cores encode."""
    prompt = render.prompt
    chunk = provenance(
        party_code=render.party.code,
        render_id=render.pk,
        lineage=lineage(prompt, parent_of=lambda p: p.parent),
        author_of=lambda p: p.author.name,
    )

    def store(index):
        image, seed = images[index], seeds[index]
        data = pngmeta.png_bytes(
            image,
            pngmeta.a1111_parameters(prompt.text, render.params, seed),
            {**chunk, **best_of_note(render.params, index)},
        )
        saved = _save(f"{_file_stem(render)}-{index}.png", data)
        return {
            "index": index,
            "file": saved,
            "seed": seed,
            "width": image.width,
            "height": image.height,
        }

    return [_storage_pool.submit(store, index) for index in range(len(images))]


def store_animation(render, frames):
    """A walk's frames as one looping animated WebP beside them (there and back again)."""
    loop = frames + frames[-2:0:-1]
    buffer = io.BytesIO()
    loop[0].save(
        buffer,
        format="WEBP",
        save_all=True,
        append_images=loop[1:],
        duration=WALK_FRAME_MS,
        loop=0,
        quality=85,
    )
    return _save(f"{_file_stem(render)}-walk.webp", buffer.getvalue())


def _file_stem(render):
    """Files are named by render and attempt: two workers that both ran a render (one stalled
    past its lease) never write the same file, and the one whose claim was lost deletes its own."""
    return f"parties/{render.party.code}/r{render.pk}" + (
        f"-a{render.attempts}" if render.attempts > 1 else ""
    )


def _save(name, data):
    # The same attempt run again (a redelivered message) replaces its files, never duplicates.
    if default_storage.exists(name):
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(data))


def delete_files(names):
    """A render's files that no one will record (another worker completed it): gone again."""
    for name in names:
        default_storage.delete(name)
