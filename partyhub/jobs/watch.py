"""What a running batch keeps an eye on: each render's progress, sent to its room, and each
render's claim, polled between steps (cancelled, taken over, renewed)."""

import json
import logging
import time

from core.broadcast import group_send
from generation import previews
from generation.params import images_per_render
from partyhub.models import Render, party_group

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # at most 4 progress frames a second per render
CANCEL_POLL_INTERVAL = 0.25


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
            images = images_per_render(render.params) if self.per_image else 1
            steps = render.params["steps"] * images
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
        group_send(party_group(render.party_id), progress_message(render.pk, step, steps, preview))


def progress_message(render_id, step, steps, preview=None):
    """The group message of a `render.progress` frame, encoded here, once: each member's
    consumer sends its bytes as they are, where it would encode the frame again for every
    member of the room."""
    frame = {
        "type": "render.progress",
        "render": render_id,
        "step": step,
        "steps": steps,
        # After the last step the image is decoded: one-step models show little else.
        "phase": "decoding" if step == steps and step > 0 else "running",
    }
    if preview is not None:
        frame["preview"] = preview
    return {"type": "render.progress", "frame": json.dumps(frame)}


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
