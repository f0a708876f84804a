"""The render job: the one function that both the embedded worker and the Celery task call."""

import logging
import time

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from generation import pngmeta
from generation.decoding import BadOutput
from generation.pipelines import Cancelled, Filtered, GpuOutOfMemory, generate
from generation.presets import get_preset
from partyhub.broadcast import group_send
from partyhub.models import Render, party_group

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # at most 4 progress frames a second per render
CANCEL_POLL_INTERVAL = 0.25


def run_render(render_id, *, takeover=False):
    """Claim, render, store and announce one render. Safe to call twice: only one run stores."""
    render = Render.claim(render_id, takeover=takeover)
    if render is None:
        return
    preset = get_preset(render.params["model"])
    if preset is None:
        render.fail(render.claim_token, "unknown_model", "The model is no longer configured.")
        return
    prompt = render.prompt
    report_progress = _progress_reporter(render)
    report_progress(0, render.params["steps"])  # tells the room the render has started
    try:
        images, seeds = generate(
            preset,
            prompt.text,
            render.params,
            on_step=report_progress,
            should_stop=_cancel_poller(render),
        )
    except Cancelled:
        render.finish_cancelled(render.claim_token)
        return
    except Filtered:
        render.finish_filtered(render.claim_token)
        return
    except GpuOutOfMemory:
        render.fail(render.claim_token, "gpu_oom", "The render did not fit in GPU memory.")
        return
    except BadOutput:
        render.fail(render.claim_token, "bad_output", "The model produced NaN or blank images.")
        return
    except Exception as exc:
        # Soft time limits and model errors alike end the render; the worker serves the next one.
        code = "timed_out" if type(exc).__name__ == "SoftTimeLimitExceeded" else "render_error"
        log.exception("render %s failed", render.pk)
        render.fail(render.claim_token, code, f"{type(exc).__name__}: {exc}")
        return
    stored = _store_images(render, prompt, images, seeds)
    render.complete(render.claim_token, stored)


def _store_images(render, prompt, images, seeds):
    lineage = prompt.lineage()
    provenance = {
        "party": render.party.code,
        "render": render.pk,
        "prompt": prompt.pk,
        "lineage": [p.pk for p in lineage],
        "authors": [p.author.name for p in lineage],
        "votes": 0,
    }
    stored = []
    for index, (image, seed) in enumerate(zip(images, seeds, strict=True)):
        data = pngmeta.png_bytes(
            image, pngmeta.a1111_parameters(prompt.text, render.params, seed), provenance
        )
        # The name is derived from the render id, so a second run overwrites, never duplicates.
        name = f"parties/{render.party.code}/r{render.pk}-{index}.png"
        if default_storage.exists(name):
            default_storage.delete(name)
        saved = default_storage.save(name, ContentFile(data))
        stored.append(
            {
                "index": index,
                "file": saved,
                "seed": seed,
                "width": image.width,
                "height": image.height,
            }
        )
    return stored


def _progress_reporter(render):
    group = party_group(render.party_id)
    last_sent = 0.0

    def report(step, steps, preview=None):
        nonlocal last_sent
        now = time.monotonic()
        if step < steps and now - last_sent < PROGRESS_INTERVAL:
            return
        last_sent = now
        message = {
            "type": "render.progress",
            "render": render.pk,
            "step": step,
            "steps": steps,
            # After the last step the image is decoded: one-step models show little else.
            "phase": "decoding" if step == steps else "running",
        }
        if preview is not None:
            message["preview"] = preview()
        group_send(group, message)

    return report


def _cancel_poller(render):
    last_polled = 0.0

    def should_stop():
        nonlocal last_polled
        now = time.monotonic()
        if now - last_polled < CANCEL_POLL_INTERVAL:
            return False
        last_polled = now
        return render.is_cancel_requested()

    return should_stop
