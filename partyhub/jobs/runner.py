"""The render job: the one function that both the embedded worker and the Celery task call.

A worker that claims a render also claims queued renders that can share its forward pass (the
same batch key, from any party) up to PARTYHUB_MAX_BATCH images, renders them together, and
then stores and announces each render on its own, as if it had run alone (in a Celery worker,
in its finisher's thread while the next batch renders: jobs/finisher.py). This module is where
the database meets the engine: it loads what a render needs as plain values (text, params,
PIL images), calls `generation`, and records what came back.
"""

import functools
import logging

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError, transaction
from django.utils import timezone

from core.errors import ApiError
from core.inbound import check_text
from generation import scoring
from generation.errors import (
    BadOutput,
    Cancelled,
    Filtered,
    GpuOutOfMemory,
    Refused,
    WeightsMissing,
)
from generation.modes import slots_for
from generation.params import check_weights
from generation.pipelines import drop_flagged, free_gpu_memory, generate_batch
from generation.presets import get_preset
from generation.weights import parse as parse_weights
from partyhub.jobs.sources import sources_of
from partyhub.jobs.store import delete_files, start_storing, store_animation
from partyhub.jobs.watch import BatchProgress, ClaimWatch
from partyhub.models import Party, Render

log = logging.getLogger(__name__)


def run_render(render_id, finisher=None):
    """Claim the render (and its batch companions), render, store and announce them.

    Safe to call twice: only one run stores. Returns False when the render is running in
    another worker's batch (its own delivery should come back later), else True. With a
    `finisher` (a Celery worker passes its own), the images are stored and recorded in its
    thread while this returns to claim the next batch; without one, before this returns.
    """
    # A plain read first: most deliveries of a batch's companions end here, without the
    # claim's locking transaction.
    state = Render.objects.filter(pk=render_id).values_list("status", "lease_until").first()
    if state is None or state[0] in Render.TERMINAL:
        return True
    if finisher is not None and finisher.holds(render_id):
        finisher.wait()  # made in this process's last batch: done once it is recorded
        return True
    status, lease_until = state
    if status == Render.Status.RUNNING and lease_until and lease_until > timezone.now():
        return False
    leader = Render.claim(render_id)
    if leader is None:
        return not Render.objects.filter(pk=render_id, status=Render.Status.RUNNING).exists()
    preset = get_preset(leader.params["model"])
    if preset is None:
        leader.fail(leader.claim_token, "unknown_model", "The model is no longer configured.")
        return True
    batch = [leader]
    if preset.family in ("diffusion", "clip-guided"):  # those that draw a batch in one pass
        batch += Render.claim_companions(leader, settings.PARTYHUB_MAX_BATCH)
    run_batch(preset, batch, finisher)
    return True


def read_text(render):
    """The prompt as the model read it, which CLIP scores the images against: with prompt
    weights, the words without their syntax (CLIP would read `((red:1.5))` as more words)."""
    text = render.prompt.text
    return parse_weights(text).text if render.params.get("weights") else text


def run_batch(preset, batch, finisher=None):
    """Render claimed renders in one forward pass and end each in its own terminal state.

    One render never fails another: a render whose input cannot be rendered ends before the
    pass forms, and when the pass itself raises, each render is run again alone, so that only
    the render whose input the model could not take fails. The images are then finished
    (`_finish`) by the `finisher`'s thread, or here when there is none."""
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
                run_batch(preset, [render], finisher)
            return
        log.exception("renders %s failed", [render.pk for render in batch])
        code = "timed_out" if timed_out else "render_error"
        return _fail_all(batch, code, f"{type(exc).__name__}: {exc}")
    # The renders still held: after the pass no one drops or adds any (the claims that lapse
    # from here on are caught where each completes).
    held = [render for render in batch if render.pk in watch.active]
    made = _kept(held, owners, images, [slot.seed for slot in slots], flags)
    # CLIP is a model: it scores here, beside the forward pass (on a GPU, the GPU's work), every
    # image of the batch in one pass, against its own prompt and its party's topic; and on a
    # CPU no second thread runs torch beside the next batch's forward pass.
    topics = dict(
        Party.objects.filter(pk__in={r.party_id for r in held}).values_list("pk", "topic")
    )
    scores = scoring.batch_image_scores(
        (kept, read_text(render), topics[render.party_id]) for render, kept, _ in made
    )
    made, scores = _chosen(made, scores)
    finish = functools.partial(_finish, made, scores)
    if finisher is None:
        finish()
    else:
        finisher.hand_over([render.pk for render in held], finish)


def _kept(held, owners, images, seeds, flags):
    """(render, its images, their seeds) for each held render, less the images the safety
    checker flagged; a render with none left ends `filtered`."""
    flags = flags or [False] * len(images)
    made = []
    for render in held:
        mine = [i for i, owner in enumerate(owners) if owner is render]
        try:
            kept, kept_seeds = drop_flagged(
                [images[i] for i in mine], [seeds[i] for i in mine], [flags[i] for i in mine]
            )
        except Filtered:
            render.finish_filtered(render.claim_token)
            continue
        made.append((render, kept, kept_seeds))
    return made


def _chosen(made, scores):
    """`made` and its `scores` with each best-of render's candidates in the order of their CLIP
    score against the prompt, best first, and the rows' `set_aside` after its first `count`
    (the rest as they are). A best-of render whose candidates have no scores (its worker could
    not load the CLIP model, or it raised) ends failed: keeping some by seed instead would pass
    a guess off as the choice that was asked for."""
    chosen = []
    for (render, images, seeds), render_scores in zip(made, scores, strict=True):
        if "best_of" not in render.params:
            chosen.append(((render, images, seeds), render_scores))
            continue
        values = [score["score"] for score in render_scores]
        if None in values:
            render.fail(
                render.claim_token,
                "scoring_unavailable",
                "The candidates could not be scored with CLIP, so the best could not be kept.",
            )
            continue
        order = scoring.best_first(values, seeds)
        count = render.params["count"]
        rows = [{**render_scores[i], "set_aside": rank >= count} for rank, i in enumerate(order)]
        chosen.append(((render, [images[i] for i in order], [seeds[i] for i in order]), rows))
    return [entry for entry, _ in chosen], [rows for _, rows in chosen]


def _finish(made, scores):
    """Store and record each render's images with their scores."""
    # Every render's PNGs start encoding at once, across the pool, before the first waits.
    storing = [
        (render, kept, start_storing(render, kept, seeds), render_scores)
        for (render, kept, seeds), render_scores in zip(made, scores, strict=True)
    ]
    finished = []
    try:
        for render, kept, files, render_scores in storing:
            finished.append(_stored(render, kept, files, render_scores))
    finally:  # should storing one fail, those stored before it still complete, as they did alone
        _complete_all(finished)


def _stored(render, images, files, scores):
    """Wait for a render's stored images: (render, its image rows with their CLIP scores against
    the prompt and the topic and embeddings for search, null when scoring is off or failed; a
    walk's animation or "")."""
    stored = [{**future.result(), **score} for future, score in zip(files, scores, strict=True)]
    animation = store_animation(render, images) if render.params["mode"] == "walk" else ""
    return render, stored, animation


def _complete_all(finished):
    """Complete the batch's renders in one transaction: one commit for the batch, not one a
    render. Each still completes only if its claim holds. Renders lock in party order, so two
    batches never hold each other's parties; should the transaction fail anyway (a deadlock
    with some other writer), each render is completed in a transaction of its own."""
    finished.sort(key=lambda item: (item[0].party_id, item[0].pk))

    def complete_each():
        return [
            render.complete(render.claim_token, rows, animation=animation)
            for render, rows, animation in finished
        ]

    try:
        with transaction.atomic():
            completed = complete_each()
    except DatabaseError:
        log.warning("completing a batch in one transaction failed; completing each alone")
        completed = complete_each()
    for (_, rows, animation), done in zip(finished, completed, strict=True):
        if not done:  # another worker took the render over while this one stalled
            delete_files([row["file"] for row in rows] + ([animation] if animation else []))


def _slots(render):
    """The render's images to make, or None when its input cannot be rendered: it then ends
    `failed` on its own. Text is refused where it enters, but rows stored before that check
    (or written by other code) must not take a batch of other parties' renders down with them."""
    try:
        texts = [render.prompt.text, render.params.get("negative"), render.params.get("walk_to")]
        for text in filter(None, texts):
            check_text(text)
        check_weights(render.prompt.text, render.params)
        return slots_for(render.prompt.text, render.params, *sources_of(render.params))
    except ApiError as error:
        render.fail(render.claim_token, "invalid_prompt", error.message)
    except Refused as refused:  # weights a model cannot take, or their syntax malformed
        render.fail(render.claim_token, refused.code, refused.message)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        render.fail(
            render.claim_token, "invalid_param", f"The render's params are broken: {error!r}"
        )
    except (ObjectDoesNotExist, OSError) as error:  # its source image is gone or unreadable
        log.exception("render %s: cannot load its source image", render.pk)
        render.fail(render.claim_token, "render_error", f"{type(error).__name__}: {error}")
    return None


def _fail_all(batch, code, message):
    for render in batch:
        render.fail(render.claim_token, code, message)
