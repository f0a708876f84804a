import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import ApiError
from generation import pipelines
from generation.errors import Cancelled
from generation.presets import get_preset
from partyhub.jobs.runner import run_render
from partyhub.models import Event, Image, Member, Party, Render
from tests.conftest import generate_alone

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"width": 64, "height": 64, "steps": 2}


@pytest.fixture
def prompt_master(party, host):
    return Member.objects.get(session_key=host.session_key)


@pytest.fixture
def queued(party, prompt_master):
    _, render = party.submit_prompt(prompt_master, "an empty chair", params={**SMALL, "count": 2})
    return render


def event_types(party):
    return list(Event.objects.filter(party=party).order_by("seq").values_list("type", flat=True))


def test_running_a_render_twice_stores_one_set_of_images(party, queued, settings):
    run_render(queued.pk)
    run_render(queued.pk)
    queued.refresh_from_db()
    assert queued.status == Render.Status.DONE
    assert queued.attempts == 1
    images = list(Image.objects.filter(render=queued).order_by("index"))
    assert [(i.index, i.seed) for i in images] == [
        (0, queued.params["seed"]),
        (1, queued.params["seed"] + 1),
    ]
    stored = sorted(p.name for p in (settings.MEDIA_ROOT / "parties" / party.code).iterdir())
    assert stored == [f"r{queued.pk}-0.png", f"r{queued.pk}-1.png"]
    assert event_types(party).count("render.done") == 1


def lapse(render):
    Render.objects.filter(pk=render.pk).update(lease_until=timezone.now() - timedelta(seconds=1))


def test_a_claim_taken_over_leaves_the_first_worker_nothing_to_store(party, queued):
    first = Render.claim(queued.pk)
    assert Render.claim(queued.pk) is None  # running, lease still valid
    assert list(Render.objects.lapsed()) == []
    lapse(queued)  # the first worker stalled and stopped renewing its lease
    assert list(Render.objects.lapsed().queues()) == [(queued.pk, None)]
    second = Render.claim(queued.pk)
    assert second.claim_token != first.claim_token
    assert Render.renew_leases([(first.pk, first.claim_token)], 60) == {first.pk}
    assert first.complete(first.claim_token, []) is False
    assert first.fail(first.claim_token, "late", "too late") is False
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == (Render.Status.RUNNING, 2)
    retry = Event.objects.get(party=party, type="render.retrying")
    assert retry.payload == {
        "render": queued.pk,
        "prompt": queued.prompt_id,
        "attempt": 2,
        "max_attempts": 3,
    }
    assert "render.done" not in event_types(party)


def test_a_lost_worker_ends_the_lease_then_fails_the_render_on_its_last_attempt(party, queued):
    for attempt in range(1, 4):
        assert Render.claim(queued.pk).attempts == attempt
        Render.worker_lost(queued.pk)  # what the Celery parent calls when the process died
    queued.refresh_from_db()
    assert (queued.status, queued.error_code) == (Render.Status.FAILED, "worker_crashed")
    assert Render.claim(queued.pk) is None  # the requeued message finds it ended
    assert event_types(party).count("render.retrying") == 2
    last = Event.objects.filter(party=party).last()
    assert (last.type, last.payload["error"]["code"]) == ("render.failed", "worker_crashed")


def test_a_render_that_used_up_its_attempts_fails_when_next_claimed(party, queued, settings):
    for _ in range(settings.RENDER_MAX_ATTEMPTS):
        assert Render.claim(queued.pk) is not None
        lapse(queued)
    assert Render.claim(queued.pk) is None
    queued.refresh_from_db()
    assert (queued.status, queued.error_code) == (Render.Status.FAILED, "worker_crashed")


def test_a_hard_time_limit_ends_the_render_timed_out(party, queued):
    Render.claim(queued.pk)
    Render.hard_time_limit_exceeded(queued.pk)
    queued.refresh_from_db()
    assert (queued.status, queued.error_code) == (Render.Status.FAILED, "timed_out")


def test_the_lease_scales_with_steps_images_and_pixels(settings):
    settings.RENDER_LEASE_BASE_SECONDS, settings.RENDER_LEASE_MS_PER_STEP = 60, 500
    small = {"steps": 20, "count": 1, "width": 256, "height": 256}  # counts as one 512×512
    assert Render.lease_seconds([small]) == 60 + 20 * 0.5
    big = {**small, "count": 4, "width": 1024, "height": 1024}
    assert Render.lease_seconds([big]) == 60 + 20 * 4 * 4 * 0.5
    assert Render.lease_seconds([small, big]) == 60 + 10 + 160


def test_a_worker_that_lost_its_claim_stores_nothing(party, queued, settings, monkeypatch):
    real = pipelines.generate_batch

    def stalled(preset, slots, on_step, should_stop):
        # While this worker "stalls", its lease lapses and another worker takes the render.
        lapse(queued)
        assert Render.claim(queued.pk).attempts == 2
        return real(preset, slots, on_step, should_stop)

    monkeypatch.setattr("partyhub.jobs.runner.generate_batch", stalled)
    run_render(queued.pk)
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == (Render.Status.RUNNING, 2)
    assert not Image.objects.exists()
    assert not (settings.MEDIA_ROOT / "parties" / party.code).exists() or not list(
        (settings.MEDIA_ROOT / "parties" / party.code).iterdir()
    )


def test_a_model_error_fails_the_render_with_its_reason(party, queued, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the GPU caught fire")

    monkeypatch.setattr("partyhub.jobs.runner.generate_batch", broken)
    run_render(queued.pk)
    queued.refresh_from_db()
    assert (queued.status, queued.error_code) == (Render.Status.FAILED, "render_error")
    assert "the GPU caught fire" in queued.error_message
    assert not Image.objects.exists()


def test_cancelling_a_queued_render_means_it_never_runs(party, queued, prompt_master):
    queued.cancel(prompt_master)
    run_render(queued.pk)
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == (Render.Status.CANCELLED, 0)
    assert event_types(party)[-1] == "render.cancelled"
    with pytest.raises(ApiError) as again:
        queued.cancel(prompt_master)
    assert again.value.code == "render_finished"


def test_a_running_render_stops_at_the_next_step_when_cancelled(
    party, queued, prompt_master, monkeypatch
):
    steps_run = []

    def stop_when_asked(*args, on_step, should_stop, **kwargs):
        Render.objects.filter(pk=queued.pk).update(cancel_requested=True)
        for step in range(1, 5):
            steps_run.append(step)
            on_step(step, 4)
            if should_stop():
                raise Cancelled()
        raise AssertionError("not stopped")

    monkeypatch.setattr("partyhub.jobs.runner.generate_batch", stop_when_asked)
    Render.objects.filter(pk=queued.pk).update(cancel_requested_by=prompt_master)
    run_render(queued.pk)
    queued.refresh_from_db()
    assert queued.status == Render.Status.CANCELLED
    assert steps_run == [1]
    assert not Image.objects.exists()
    last = Event.objects.filter(party=party).last()
    assert (last.type, last.payload) == (
        "render.cancelled",
        {"render": queued.pk, "prompt": queued.prompt_id, "by": prompt_master.pk},
    )


def test_cancelling_a_running_render_records_who_asked(party, queued, prompt_master):
    Render.claim(queued.pk)
    queued.cancel(prompt_master)
    queued.refresh_from_db()
    assert queued.status == Render.Status.RUNNING  # the worker stops it at its next step
    assert (queued.cancel_requested, queued.cancel_requested_by) == (True, prompt_master)


def test_a_render_whose_images_are_all_flagged_ends_filtered(party, queued, monkeypatch):
    def flag_everything(*args, **kwargs):
        return ["a", "b"], [True, True]  # the safety checker flagged both images

    monkeypatch.setattr("partyhub.jobs.runner.generate_batch", flag_everything)
    run_render(queued.pk)
    queued.refresh_from_db()
    assert queued.status == Render.Status.FILTERED
    assert not Image.objects.exists()
    last = Event.objects.filter(party=party).last()
    assert (last.type, last.payload) == (
        "render.filtered",
        {"render": queued.pk, "prompt": queued.prompt_id},
    )


def test_flagged_images_are_dropped_and_the_rest_kept():
    assert pipelines.drop_flagged(["a", "b", "c"], [1, 2, 3], [False, True, False]) == (
        ["a", "c"],
        [1, 3],
    )
    assert pipelines.drop_flagged(["a"], [1], None) == (["a"], [1])


def test_the_pipeline_interrupt_flag_ends_denoising_early(party, queued):
    # The real pipeline: should_stop turns true after the first step; Cancelled comes out.
    steps = []
    with pytest.raises(Cancelled):
        generate_alone(
            get_preset("offline"),
            "a chair",
            {**queued.params, "steps": 6},
            on_step=lambda step, total, preview=None: steps.append(step),
            should_stop=lambda: len(steps) >= 1,
        )
    assert steps == [1]


def test_seqs_stay_gapless_under_concurrent_writers(party, prompt_master):
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent connections")
    errors = []

    def write(n):
        try:
            member = Member.objects.get(pk=prompt_master.pk)
            for i in range(10):
                Party.objects.get(pk=party.pk).add_association(member, f"word {n}-{i}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seqs = list(Event.objects.filter(party=party).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 2 + 60 + 1))
    party.refresh_from_db()
    assert party.last_seq == 62
