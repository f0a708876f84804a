"""Compatible queued renders from any party share one forward pass, and each ends as if alone."""

import numpy as np
import pytest
from django.db import DatabaseError

from generation.pipelines import get_pipeline
from generation.presets import get_preset
from partyhub.jobs.runner import run_batch, run_render
from partyhub.models import Event, Member, Party, Render
from tests.conftest import render_pixels

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"width": 64, "height": 64, "steps": 3, "sampler": "Euler"}


@pytest.fixture
def author(party, host):
    return Member.objects.get(session_key=host.session_key)


@pytest.fixture
def other_party():
    party, stranger = Party.start(topic="distant planets", session_key="q" * 32, host_name="Zed")
    return party, stranger


@pytest.fixture
def forward_rows(monkeypatch):
    """The batch size of every UNet call (classifier-free guidance doubles it)."""
    unet = get_pipeline(get_preset("offline")).unet
    real = unet.forward
    rows = []

    def forward(sample, *args, **kwargs):
        rows.append(sample.shape[0])
        return real(sample, *args, **kwargs)

    monkeypatch.setattr(unet, "forward", forward)
    return rows


def queue(party, author, text, **params):
    return party.submit_prompt(author, text, params={**SMALL, **params})[1]


def test_renders_of_two_parties_share_a_pass_and_match_their_solo_images(
    party, author, other_party, settings, forward_rows
):
    settings.PARTYHUB_MAX_BATCH = 1
    solo_a = queue(party, author, "a red planet", seed=1, count=2)
    solo_b = queue(*other_party, "a blue moon", seed=2, negative="text")
    run_render(solo_a.pk)
    run_render(solo_b.pk)
    assert set(forward_rows) == {4, 2}  # alone: two images, then one, each doubled by CFG
    forward_rows.clear()

    settings.PARTYHUB_MAX_BATCH = 8
    batch_a = queue(party, author, "a red planet", seed=1, count=2)
    batch_b = queue(*other_party, "a blue moon", seed=2, negative="text")
    assert run_render(batch_a.pk) is True
    assert set(forward_rows) == {6}  # three images in one pass
    for render in (batch_a, batch_b):
        render.refresh_from_db()
        assert render.status == Render.Status.DONE
    for solo, batched in ((solo_a, batch_a), (solo_b, batch_b)):
        for alone, together in zip(render_pixels(solo), render_pixels(batched), strict=True):
            assert np.abs(alone - together).max() <= 2  # float noise of a larger matmul
    # b's delivery finds it finished and does nothing.
    assert run_render(batch_b.pk) is True
    assert Event.objects.filter(party=other_party[0], type="render.done").count() == 2


def test_only_compatible_renders_share_a_pass_and_the_cap_counts_images(
    party, author, settings, forward_rows
):
    settings.PARTYHUB_MAX_BATCH = 3
    first = queue(party, author, "one", count=2)
    other_steps = queue(party, author, "two", steps=4)
    too_many = queue(party, author, "three", count=2)
    fits = queue(party, author, "four")
    run_render(first.pk)
    statuses = {
        r.pk: r.status for r in Render.objects.filter(pk__in=[other_steps.pk, too_many.pk, fits.pk])
    }
    assert statuses == {
        other_steps.pk: Render.Status.QUEUED,
        too_many.pk: Render.Status.QUEUED,
        fits.pk: Render.Status.DONE,
    }
    assert set(forward_rows) == {6}


def test_a_render_cancelled_mid_batch_ends_alone(party, author, other_party, settings, monkeypatch):
    settings.PARTYHUB_MAX_BATCH = 8
    kept = queue(party, author, "kept", steps=6)
    cancelled = queue(*other_party, "cancelled", steps=6)
    monkeypatch.setattr("partyhub.jobs.watch.CANCEL_POLL_INTERVAL", 0)
    unet = get_pipeline(get_preset("offline")).unet
    real = unet.forward
    calls = []

    def forward(sample, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # mid-run, someone cancels the second party's render
            Render.objects.filter(pk=cancelled.pk).update(cancel_requested=True)
        return real(sample, *args, **kwargs)

    monkeypatch.setattr(unet, "forward", forward)
    run_render(kept.pk)
    kept.refresh_from_db()
    cancelled.refresh_from_db()
    assert (kept.status, cancelled.status) == (Render.Status.DONE, Render.Status.CANCELLED)
    assert kept.images.count() == 1 and not cancelled.images.exists()
    assert len(calls) == 6  # the pass ran on for the render still wanted
    types = list(
        Event.objects.filter(party=other_party[0]).order_by("seq").values_list("type", flat=True)
    )
    assert types[-1] == "render.cancelled" and "render.done" not in types


def test_a_render_running_in_another_batch_is_reported_busy(party, author, settings):
    settings.PARTYHUB_MAX_BATCH = 8
    leader = queue(party, author, "leader")
    companion = queue(party, author, "companion")
    leader = Render.claim(leader.pk)
    assert [r.pk for r in Render.claim_companions(leader, 8)] == [companion.pk]
    assert run_render(companion.pk) is False  # its delivery should come back later
    companion.refresh_from_db()
    companion.complete(companion.claim_token, [])
    assert run_render(companion.pk) is True  # ended: nothing left to do


def test_a_render_whose_source_is_gone_fails_alone_and_its_companions_render(
    party, author, other_party, settings, forward_rows
):
    """One party's broken render sits in a pass beside another party's ordinary one: the pass
    raises, each runs again alone, and only the broken one fails."""
    from django.core.files.storage import default_storage
    from PIL import Image as PILImage

    from tests.jobs.test_modes import make_upload

    settings.PARTYHUB_MAX_BATCH = 8
    img2img = {"mode": "img2img", "strength": 0.5}
    ours = make_upload(party, author, PILImage.new("RGB", (64, 64), "red"))
    theirs = make_upload(other_party[0], other_party[1], PILImage.new("RGB", (64, 64), "blue"))
    broken = queue(party, author, "a red circle", init_upload=ours.pk, **img2img)
    ordinary = queue(*other_party, "a blue square", init_upload=theirs.pk, **img2img)
    default_storage.delete(ours.file.name)  # the source went missing after it was checked

    assert run_render(broken.pk) is True
    broken.refresh_from_db()
    ordinary.refresh_from_db()
    assert (broken.status, broken.error_code) == (Render.Status.FAILED, "render_error")
    assert "FileNotFoundError" in broken.error_message
    assert ordinary.status == Render.Status.DONE and ordinary.images.count() == 1
    assert 2 in forward_rows  # the ordinary one rendered alone after the shared pass raised
    others = Event.objects.filter(party=other_party[0]).values_list("type", flat=True)
    assert "render.done" in others and "render.failed" not in others


def test_a_stored_render_with_text_no_encoder_takes_fails_before_the_batch_forms(
    party, author, other_party, settings, forward_rows
):
    """Text is refused where it enters; a row stored before that check still fails alone,
    before it joins any pass. SQLite (`make run`'s database) keeps a lone surrogate in JSON as
    it was sent; PostgreSQL refuses to store one, so the row is read and then given one here,
    as a worker reading it from SQLite would see it."""
    settings.PARTYHUB_MAX_BATCH = 8
    bad = queue(party, author, "a red circle")
    ordinary = queue(*other_party, "a blue square")
    leader = Render.claim(bad.pk)
    leader.params = {**leader.params, "negative": "sad \udc80"}
    batch = [leader, *Render.claim_companions(leader, 8)]
    assert [render.pk for render in batch] == [bad.pk, ordinary.pk]

    run_batch(get_preset("offline"), batch)
    bad.refresh_from_db()
    ordinary.refresh_from_db()
    assert ordinary.status == Render.Status.DONE
    assert (bad.status, bad.error_code) == (Render.Status.FAILED, "invalid_prompt")
    assert "surrogate" in bad.error_message
    assert set(forward_rows) == {2}  # the pass held the ordinary render's image alone


def test_a_batch_whose_one_transaction_fails_completes_each_render_alone(
    party, author, other_party, settings, monkeypatch
):
    settings.PARTYHUB_MAX_BATCH = 8
    first = queue(party, author, "first")
    second = queue(*other_party, "second")
    real = Render.complete
    calls = []

    def complete(self, *args, **kwargs):
        calls.append(self.pk)
        done = real(self, *args, **kwargs)
        if len(calls) == 2:  # the batch's transaction dies at its end (a deadlock, say)
            raise DatabaseError("deadlock detected")
        return done

    monkeypatch.setattr(Render, "complete", complete)
    run_render(first.pk)
    assert len(calls) == 4 and sorted(calls[:2]) == sorted(calls[2:])  # together, then alone
    for render in (first, second):
        render.refresh_from_db()
        assert render.status == Render.Status.DONE and render.images.count() == 1
        assert Event.objects.filter(party=render.party, type="render.done").count() == 1


def test_a_batchs_new_prompts_are_encoded_together_in_one_call(
    party, author, other_party, settings, monkeypatch
):
    import torch

    from generation import modes

    settings.PARTYHUB_MAX_BATCH = 8
    pipe = get_pipeline(get_preset("offline"))
    real = pipe.encode_prompt
    calls = []

    def encode_prompt(prompt, *args, **kwargs):
        calls.append(list(prompt) if isinstance(prompt, list) else [prompt])
        return real(prompt, *args, **kwargs)

    monkeypatch.setattr(pipe, "encode_prompt", encode_prompt)
    texts = ["a violet comet, unseen 1", "a violet comet, unseen 2", "a violet comet, unseen 3"]
    renders = [queue(party, author, texts[0], count=2), queue(party, author, texts[1])]
    renders.append(queue(*other_party, texts[2]))
    run_render(renders[0].pk)
    assert [r.status for r in Render.objects.filter(pk__in=[r.pk for r in renders])] == ["done"] * 3
    with_prompts = [call for call in calls if set(call) & set(texts)]
    # Each new text once, all in one call (with any negative not yet cached).
    assert [[text for text in call if text in texts] for call in with_prompts] == [texts]
    # Each row is what the text encodes to alone (a larger matmul's float noise aside).
    together = modes.embeddings(pipe, texts, "cpu")
    for text, row in zip(texts, together.split(1), strict=True):
        alone, _ = real(text, "cpu", 1, False)
        torch.testing.assert_close(row, alone, atol=1e-4, rtol=1e-4)
