"""Compatible queued renders from any party share one forward pass, and each ends as if alone."""

import numpy as np
import pytest

from generation.pipelines import get_pipeline
from generation.presets import get_preset
from generation.render import run_render
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
    monkeypatch.setattr("generation.render.CANCEL_POLL_INTERVAL", 0)
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
