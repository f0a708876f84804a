"""A worker's finisher (partyhub/jobs/finisher.py): a batch's images are stored and recorded in
its own thread while the rendering thread goes on to the next batch, and nothing a render
guarantees changes: each ends `done` with its images, once, and its companions' own
deliveries find it so without claiming it again."""

import threading
from concurrent.futures import Future

import pytest

from partyhub.jobs.finisher import Finisher
from partyhub.jobs.runner import run_render
from partyhub.models import Event, Member, Render

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"width": 64, "height": 64, "steps": 1, "sampler": "Euler"}


@pytest.fixture
def author(party, host):
    return Member.objects.get(session_key=host.session_key)


def queue(party, author, text, **params):
    return party.submit_prompt(author, text, params={**SMALL, **params})[1]


class HeldCalls:
    """A finisher's thread that runs nothing until the test says so: what was handed over,
    and when, is then visible in the database."""

    def __init__(self):
        self.calls = []

    def submit(self, fn, *args):
        future = Future()
        self.calls.append((future, fn, args))
        return future

    def run_all(self):
        for future, fn, args in self.calls:
            future.set_result(fn(*args))
        self.calls.clear()


def statuses(renders):
    return [Render.objects.get(pk=render.pk).status for render in renders]


def test_a_batch_is_recorded_by_the_finisher_after_the_rendering_thread_returns(
    party, author, settings
):
    settings.PARTYHUB_MAX_BATCH = 8
    renders = [queue(party, author, f"a lighthouse, take {i}", seed=i) for i in range(3)]
    held = HeldCalls()
    finisher = Finisher(held.submit)

    assert run_render(renders[0].pk, finisher) is True
    # Rendered, handed over, not yet recorded: still running under their lease, no images.
    assert statuses(renders) == ["running"] * 3
    assert not any(Render.objects.get(pk=r.pk).images.exists() for r in renders)
    assert len(held.calls) == 1

    held.run_all()
    assert statuses(renders) == ["done"] * 3
    for render in renders:
        assert Render.objects.get(pk=render.pk).images.count() == 1
    done = Event.objects.filter(party=party, type="render.done").count()
    assert done == 3


def test_a_companions_own_delivery_waits_for_the_finisher_and_claims_nothing(
    party, author, settings, monkeypatch
):
    settings.PARTYHUB_MAX_BATCH = 8
    leader, companion = (queue(party, author, f"a harbour, take {i}", seed=i) for i in range(2))
    held = HeldCalls()
    finisher = Finisher(held.submit)
    run_render(leader.pk, finisher)
    claims = []
    monkeypatch.setattr(Render, "claim", classmethod(lambda cls, pk: claims.append(pk)))

    # Its delivery comes while the finisher still holds it: it waits for the batch to be
    # recorded, as the finisher's thread does it meanwhile.
    runner = threading.Timer(0.05, held.run_all)
    runner.start()
    assert run_render(companion.pk, finisher) is True
    runner.join()
    assert statuses([leader, companion]) == ["done", "done"]
    # A later delivery of either (Celery redelivers) reads that it is done and stops there.
    assert run_render(companion.pk) is True and run_render(leader.pk, finisher) is True
    assert claims == []


def test_handing_over_a_batch_first_waits_for_the_one_before(party, author, settings):
    settings.PARTYHUB_MAX_BATCH = 1
    first, second = (queue(party, author, f"a beacon, take {i}", seed=i) for i in range(2))
    order = []
    threads = []

    def submit(fn, *args):
        # Each finishing runs in a thread of its own here: only the finisher's waiting keeps
        # the second from starting before the first has ended.
        future = Future()

        def run():
            order.append(("start", args[1]))
            threading.Event().wait(0.1)
            future.set_result(fn(*args))
            order.append(("end", args[1]))

        threads.append(threading.Thread(target=run))
        threads[-1].start()
        return future

    finisher = Finisher(submit)
    run_render(first.pk, finisher)
    run_render(second.pk, finisher)
    finisher.wait()
    for thread in threads:
        thread.join()
    assert [step for step, _ in order] == ["start", "end", "start", "end"]
    assert statuses([first, second]) == ["done", "done"]


def test_a_finishing_that_raises_is_logged_and_leaves_its_renders_to_their_lease(
    party, author, settings, monkeypatch, caplog
):
    from partyhub.jobs import runner

    settings.PARTYHUB_MAX_BATCH = 1
    broken, next_one = (queue(party, author, f"a shore, take {i}", seed=i) for i in range(2))
    finisher = Finisher()
    real = runner.start_storing
    monkeypatch.setattr(runner, "start_storing", lambda *args: 1 / 0)
    run_render(broken.pk, finisher)
    finisher.wait()
    assert "finishing renders" in caplog.text and "ZeroDivisionError" in caplog.text
    broken.refresh_from_db()
    # Still running: once its lease lapses, requeue_lapsed gives it to another run.
    assert broken.status == "running" and broken.lease_until is not None

    monkeypatch.setattr(runner, "start_storing", real)
    run_render(next_one.pk, finisher)  # the finisher serves the next batch as before
    finisher.wait()
    assert statuses([next_one]) == ["done"]
