"""The render job: the one function that both the embedded worker and the Celery task call.

A worker that claims a render also claims queued renders that can share its forward pass (the
same batch key, from any party) up to PARTYHUB_MAX_BATCH images, renders them together, and
then stores and announces each render on its own, as if it had run alone.
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from generation import pngmeta, previews, scoring
from generation.decoding import BadOutput
from generation.modes import slots_for
from generation.pipelines import (
    Cancelled,
    Filtered,
    GpuOutOfMemory,
    drop_flagged,
    free_gpu_memory,
    generate_batch,
)
from generation.presets import WeightsMissing, get_preset
from partyhub.broadcast import group_send
from partyhub.errors import ApiError
from partyhub.inbound import check_text
from partyhub.models import Render, party_group

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # at most 4 progress frames a second per render
CANCEL_POLL_INTERVAL = 0.25
WALK_FRAME_MS = 120  # how long each frame of a walk's animation shows
# PNG encoding and storage writes run here, beside the model, not one after another.
_storage_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="partyhub-store")


def run_render(render_id):
    """Claim the render (and its batch companions), render, store and announce them.

    Safe to call twice: only one run stores. Returns False when the render is running in
    another worker's batch (its own delivery should come back later), else True.
    """
    leader = Render.claim(render_id)
    if leader is None:
        return not Render.objects.filter(pk=render_id, status=Render.Status.RUNNING).exists()
    preset = get_preset(leader.params["model"])
    if preset is None:
        leader.fail(leader.claim_token, "unknown_model", "The model is no longer configured.")
        return True
    batch = [leader]
    if preset.family == "diffusion":
        batch += Render.claim_companions(leader, settings.PARTYHUB_MAX_BATCH)
    run_batch(preset, batch)
    return True


def run_batch(preset, batch):
    """Render claimed renders in one forward pass and end each in its own terminal state.

    One render never fails another: a render whose input cannot be rendered ends before the
    pass forms, and when the pass itself raises, each render is run again alone, so that only
    the render whose input the model could not take fails."""
    slots, owners = [], []
    for render in batch:
        mine = _slots(render)
        if mine is None:
            continue
        slots += mine
        owners += [render] * len(mine)
    batch = [render for render in batch if render in owners]
    if not batch:
        return
    watch = ClaimWatch(batch)
    progress = BatchProgress(preset, batch, owners, watch)
    progress.started()
    try:
        images, flags = generate_batch(preset, slots, on_step=progress, should_stop=watch.none_left)
    except Cancelled:
        return  # every render was cancelled or taken over, and ClaimWatch has dealt with each
    except GpuOutOfMemory:
        return _fail_all(batch, "gpu_oom", "The render did not fit in GPU memory.")
    except WeightsMissing as missing:  # gone from disk since the render was queued
        return _fail_all(batch, "model_unavailable", str(missing))
    except BadOutput:
        return _fail_all(batch, "bad_output", "The model produced NaN or blank images.")
    except Exception as exc:
        # Soft time limits and model errors alike end the renders; the worker serves the next.
        timed_out = type(exc).__name__ == "SoftTimeLimitExceeded"
        if timed_out:
            free_gpu_memory()  # what the interrupted forward pass held
        elif len(watch.active) > 1:
            log.warning(
                "a batch of renders %s raised %r; running each alone", list(watch.active), exc
            )
            for render in list(watch.active.values()):
                run_batch(preset, [render])
            return
        log.exception("renders %s failed", [render.pk for render in batch])
        code = "timed_out" if timed_out else "render_error"
        return _fail_all(batch, code, f"{type(exc).__name__}: {exc}")
    flags = flags or [False] * len(slots)
    for render in batch:
        if render.pk not in watch.active:
            continue  # cancelled, or taken over by another worker: its images are dropped
        mine = [i for i, owner in enumerate(owners) if owner is render]
        try:
            kept, seeds = drop_flagged(
                [images[i] for i in mine], [slots[i].seed for i in mine], [flags[i] for i in mine]
            )
        except Filtered:
            render.finish_filtered(render.claim_token)
            continue
        stored = _store_images(render, kept, seeds)
        # CLIP scores against the prompt and the topic, and each image's embedding for search;
        # null ones when scoring is off or fails.
        scores = scoring.image_scores(kept, render.prompt.text, render.party.topic)
        stored = [{**row, **score} for row, score in zip(stored, scores, strict=True)]
        animation = _store_animation(render, kept) if render.params["mode"] == "walk" else ""
        if not render.complete(render.claim_token, stored, animation=animation):
            # Another worker took the render over while this one stalled: its files stay.
            for name in [row["file"] for row in stored] + ([animation] if animation else []):
                default_storage.delete(name)


def _slots(render):
    """The render's images to make, or None when its input cannot be rendered: it then ends
    `failed` on its own. Text is refused where it enters, but rows stored before that check
    (or written by other code) must not take a batch of other parties' renders down with them."""
    try:
        texts = [render.prompt.text, render.params.get("negative"), render.params.get("walk_to")]
        for text in filter(None, texts):
            check_text(text)
        return slots_for(render.prompt.text, render.params)
    except ApiError as error:
        render.fail(render.claim_token, "invalid_prompt", error.message)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        render.fail(
            render.claim_token, "invalid_param", f"The render's params are broken: {error!r}"
        )
    return None


def _fail_all(batch, code, message):
    for render in batch:
        render.fail(render.claim_token, code, message)


def _store_images(render, images, seeds):
    prompt = render.prompt
    lineage = prompt.lineage()
    provenance = {
        "party": render.party.code,
        "render": render.pk,
        "prompt": prompt.pk,
        "lineage": [p.pk for p in lineage],
        "authors": [p.author.name for p in lineage],
        "votes": 0,
    }

    def store(index):
        image, seed = images[index], seeds[index]
        data = pngmeta.png_bytes(
            image, pngmeta.a1111_parameters(prompt.text, render.params, seed), provenance
        )
        saved = _save(f"{_file_stem(render)}-{index}.png", data)
        return {
            "index": index,
            "file": saved,
            "seed": seed,
            "width": image.width,
            "height": image.height,
        }

    return list(_storage_pool.map(store, range(len(images))))


def _store_animation(render, frames):
    """A walk's frames as one looping animated WebP beside them (there and back again)."""
    import io

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


class BatchProgress:
    """Progress for every render of a batch still held, each to its own party: at most 4 frames
    a second, the final step always, with a TAESD preview of each render's first image."""

    def __init__(self, preset, batch, owners, watch):
        self.batch, self.watch = batch, watch
        # An autoregressive render counts tokens over all its images, one image after another.
        self.per_image = preset.family == "autoregressive"
        self.decoder = previews.get_decoder(preset)
        # Each render's first image in the batch is the one its room sees forming.
        self.first_rows = [owners.index(render) for render in batch]
        self.last_sent = 0.0

    def started(self):
        for render in self.batch:
            steps = render.params["steps"] * (render.params["count"] if self.per_image else 1)
            self._send(render, 0, steps, None)

    def __call__(self, step, steps, latents=None):
        now = time.monotonic()
        if step < steps and now - self.last_sent < PROGRESS_INTERVAL:
            return
        self.last_sent = now
        # A worker that stalled and woke up must not report on renders taken from it.
        self.watch.poll()
        urls = [None] * len(self.batch)
        # After the last step the real images follow at once: a preview then only costs time.
        if self.decoder is not None and latents is not None and step < steps:
            urls = previews.data_urls(self.decoder, latents[self.first_rows])
        for render, url in zip(self.batch, urls, strict=True):
            if render.pk in self.watch.active:
                self._send(render, step, steps, url)

    def _send(self, render, step, steps, preview):
        message = {
            "type": "render.progress",
            "render": render.pk,
            "step": step,
            "steps": steps,
            # After the last step the image is decoded: one-step models show little else.
            "phase": "decoding" if step == steps and step > 0 else "running",
        }
        if preview is not None:
            message["preview"] = preview
        group_send(party_group(render.party_id), message)


class ClaimWatch:
    """Keeps a batch's claims while it runs. Polled between steps (at most 4 times a second):
    a render someone cancelled ends at once; a render another worker took over (this one
    stalled past its lease) is dropped; the leases of the rest are renewed, a third of the way
    through. The batch runs on for the renders still held and is interrupted when none is."""

    def __init__(self, batch):
        self.active = {render.pk: render for render in batch}
        self.lease = Render.lease_seconds([render.params for render in batch])
        self.last_polled = 0.0
        self._renew()  # the companions were claimed after the leader: one lease for the batch

    def none_left(self):
        self.poll()
        return not self.active

    def poll(self):
        now = time.monotonic()
        if now - self.last_polled < CANCEL_POLL_INTERVAL:
            return
        self.last_polled = now
        asked = Render.objects.filter(pk__in=list(self.active), cancel_requested=True)
        for pk in asked.values_list("pk", flat=True):
            render = self.active.pop(pk)
            render.finish_cancelled(render.claim_token)
        if now - self.renewed > self.lease / 3:
            self._renew()

    def _renew(self):
        self.renewed = time.monotonic()
        claims = [(pk, render.claim_token) for pk, render in self.active.items()]
        for pk in Render.renew_leases(claims, self.lease):
            log.warning("render %s was taken over by another worker; dropping it", pk)
            self.active.pop(pk)
