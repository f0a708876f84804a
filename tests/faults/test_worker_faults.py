"""Worker faults injected into the real parts (issue 7, items 1–5 and 8): Celery prefork workers
in processes of their own (tests/faulty_worker.py, whose renders misbehave on request), the Redis
broker and channel layer, and the PostgreSQL test database. A member's WebSocket watches what the
room sees; the archive, the Image rows and the media folder say what was kept."""

import asyncio
import os
import signal
import time

import pytest
from channels.db import database_sync_to_async

from config.celery import app as celery_app
from partyhub.jobs.dispatch import requeue_lapsed
from partyhub.jobs.tasks import BUSY_RETRY_SECONDS
from partyhub.jobs.tasks import render as render_task
from partyhub.models import Event, Image, Render
from tests.conftest import receive_until
from tests.workers import REPO

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FAULTY = str(REPO / "tests" / "faulty_worker.py")
# Blank images from the overhead probe, and no CLIP to score them: the faults are the point.
PROBE = {"PARTYHUB_OVERHEAD_PROBE": "1", "PARTYHUB_CLIP_PRETRAINED": ""}


@pytest.fixture(autouse=True)
def probe_model(settings):
    settings.PARTYHUB_OVERHEAD_PROBE = True


@pytest.fixture
async def room(party, host):
    ws = host.websocket(party.code, since=party.last_seq)
    assert (await ws.connect())[0]
    yield ws
    await ws.disconnect()


async def submit(ws, text, steps=20):
    params = {"model": "overhead-probe", "width": 64, "height": 64, "steps": steps}
    await ws.send_json_to({"type": "prompt.submit", "text": text, "params": params})


def ended(frame):
    return frame["type"] in ("render.done", "render.failed", "error")


def mid_render(frame):
    return frame["type"] == "render.progress" and frame["step"] >= 2


def archived(party):
    return [e.type for e in Event.objects.filter(party=party).order_by("seq")]


def media_files(settings, party):
    folder = settings.MEDIA_ROOT / "parties" / party.code
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def active_tasks(worker):
    return celery_app.control.inspect([worker.hostname]).active()[worker.hostname]


@pytest.fixture
async def beat():
    """What `celery beat` does for lapsed renders, every half second instead of every five."""

    async def tick():
        while True:
            await database_sync_to_async(requeue_lapsed)()
            await asyncio.sleep(0.5)

    task = asyncio.create_task(tick())
    yield
    task.cancel()


async def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while not await database_sync_to_async(condition)():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.2)


async def test_a_worker_killed_mid_render_is_replaced_and_the_render_finishes_once(
    start_worker, room, party, settings
):
    worker = start_worker(program=FAULTY, env=PROBE)
    await submit(room, "an empty chair", steps=30)
    first = await receive_until(room, mid_render, timeout=60)
    os.kill(worker.pool_pids()[0], signal.SIGKILL)
    frames = first + await receive_until(room, ended, timeout=60)

    seen = [f["type"] for f in frames if "seq" in f]
    assert seen == ["prompt.added", "render.queued", "render.retrying", "render.done"]
    retry = next(f for f in frames if f["type"] == "render.retrying")
    assert (retry["attempt"], retry["max_attempts"]) == (2, 3)
    render = await Render.objects.aget(pk=frames[-1]["render"])
    assert (render.status, render.attempts) == (Render.Status.DONE, 2)
    assert await Image.objects.filter(render=render).acount() == 1
    assert await database_sync_to_async(media_files)(settings, party) == [f"r{render.pk}-a2-0.png"]


async def test_a_render_that_kills_every_worker_fails_and_the_queue_moves_on(
    start_worker, room, party
):
    start_worker(program=FAULTY, env=PROBE)
    await submit(room, "a chair that will crash")
    frames = await receive_until(room, ended, timeout=60)
    assert frames[-1]["type"] == "render.failed"
    assert frames[-1]["error"]["code"] == "worker_crashed"
    assert [f["attempt"] for f in frames if f["type"] == "render.retrying"] == [2, 3]
    crashed = await Render.objects.aget(pk=frames[-1]["render"])
    assert crashed.attempts == 3

    await submit(room, "a plain chair")
    frames = await receive_until(room, ended, timeout=60)
    assert frames[-1]["type"] == "render.done"
    assert await Image.objects.filter(render=crashed).acount() == 0


async def test_a_hung_render_times_out_softly_and_one_that_ignores_it_is_killed(
    start_worker, room, party, monkeypatch
):
    limits = {"PARTYHUB_RENDER_SOFT_TIME_LIMIT": "2", "PARTYHUB_RENDER_HARD_TIME_LIMIT": "4"}
    worker = start_worker(program=FAULTY, env={**PROBE, **limits})
    # The sender writes its limits into each message, and the worker obeys the message's. The
    # task caches them (`_exec_options`) at its first send: uncached here, restored after.
    monkeypatch.setattr(render_task, "_exec_options", None)
    monkeypatch.setattr(render_task, "soft_time_limit", 2)
    monkeypatch.setattr(render_task, "time_limit", 4)
    (pool,) = worker.pool_pids()

    await submit(room, "a chair that will hang")
    frames = await receive_until(room, ended, timeout=60)
    assert (frames[-1]["type"], frames[-1]["error"]["code"]) == ("render.failed", "timed_out")
    assert worker.pool_pids() == [pool]  # the soft limit leaves the process serving

    await submit(room, "a stubborn chair")
    frames = await receive_until(room, ended, timeout=60)
    assert (frames[-1]["type"], frames[-1]["error"]["code"]) == ("render.failed", "timed_out")
    assert "hard time limit" in frames[-1]["error"]["message"]
    await submit(room, "a plain chair", steps=3)  # well inside the 2 s limit
    frames = await receive_until(room, ended, timeout=60)
    assert frames[-1]["type"] == "render.done"
    assert pool not in worker.pool_pids()  # the hard limit replaced the process
    assert "render.retrying" not in await database_sync_to_async(archived)(party)


async def test_a_stalled_worker_loses_its_render_and_its_late_result_is_refused(
    start_worker, room, party, settings, beat
):
    lease = {"PARTYHUB_RENDER_LEASE_BASE_SECONDS": "3", "PARTYHUB_RENDER_LEASE_MS_PER_STEP": "1"}
    worker = start_worker(program=FAULTY, concurrency=2, env={**PROBE, **lease})
    await submit(room, "an empty chair", steps=40)
    frames = await receive_until(room, mid_render, timeout=60)
    render_id = frames[-1]["render"]
    (running,) = active_tasks(worker)
    stalled = running["worker_pid"]
    os.kill(stalled, signal.SIGSTOP)
    try:
        # Its lease runs out (3 s and 40 ms of steps); beat's task hands the render on.
        frames += await receive_until(room, ended, timeout=60)
    finally:
        os.kill(stalled, signal.SIGCONT)
    # The stalled process wakes, finds its claim taken, and ends its task storing nothing.
    await wait_for(lambda: not active_tasks(worker))

    render = await Render.objects.aget(pk=render_id)
    assert (render.status, render.attempts) == (Render.Status.DONE, 2)
    assert await Image.objects.filter(render=render).acount() == 1
    assert await database_sync_to_async(media_files)(settings, party) == [f"r{render_id}-a2-0.png"]
    types = await database_sync_to_async(archived)(party)
    assert types.count("render.retrying") == 1 and types.count("render.done") == 1
    # Nothing from the stalled worker reaches the room after the result.
    assert await room.receive_nothing(timeout=2)


async def test_a_render_outliving_the_visibility_timeout_is_not_run_twice(
    start_worker, room, party, settings
):
    # Redis hands the unacknowledged message to the second pool process after 1 s, many times.
    env = {**PROBE, "FAULTY_VISIBILITY_TIMEOUT": "1", "FAULTY_STEP_SECONDS": "0.2"}
    worker = start_worker(program=FAULTY, concurrency=2, env=env)
    await submit(room, "an empty chair", steps=40)  # 8 s
    frames = await receive_until(room, ended, timeout=60)
    assert frames[-1]["type"] == "render.done"
    render = await Render.objects.aget(pk=frames[-1]["render"])
    assert render.attempts == 1
    assert await Image.objects.filter(render=render).acount() == 1
    assert await database_sync_to_async(media_files)(settings, party) == [f"r{render.pk}-0.png"]
    # It really was delivered again while it ran (Celery logs "Task <name>[<id>] received").
    received = [line for line in worker.output().splitlines() if line.endswith("] received")]
    assert len(received) >= 2, worker.output()


def test_the_visibility_timeout_exceeds_the_hard_limit_and_the_retry_countdown():
    visibility = celery_app.conf.broker_transport_options["visibility_timeout"]
    assert visibility > celery_app.conf.task_time_limit
    assert visibility > BUSY_RETRY_SECONDS


@pytest.mark.parametrize("shutdown", ["warm", "cold"])
async def test_a_worker_shut_down_mid_render_loses_nothing(
    start_worker, room, party, settings, shutdown, beat
):
    lease = {"PARTYHUB_RENDER_LEASE_BASE_SECONDS": "3", "PARTYHUB_RENDER_LEASE_MS_PER_STEP": "1"}
    worker = start_worker(program=FAULTY, env={**PROBE, **lease})
    await submit(room, "an empty chair", steps=30)
    frames = await receive_until(room, mid_render, timeout=60)
    render_id = frames[-1]["render"]
    # SIGTERM: finish what runs, then stop. SIGQUIT: stop now.
    worker.process.send_signal(signal.SIGTERM if shutdown == "warm" else signal.SIGQUIT)
    await asyncio.to_thread(worker.process.wait, 60)
    if shutdown == "cold":
        # Nothing finished it: a new worker takes it over once its lease lapses.
        start_worker(program=FAULTY, env={**PROBE, **lease})
    frames += await receive_until(room, ended, timeout=60)
    render = await Render.objects.aget(pk=render_id)
    assert render.status == Render.Status.DONE
    assert render.attempts == (1 if shutdown == "warm" else 2)
    assert await Image.objects.filter(render=render).acount() == 1
