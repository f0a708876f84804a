"""The production path with real parts: a Celery prefork worker in its own process, the Redis
broker and channel layer on 127.0.0.1:6379, and the PostgreSQL test database."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from config.celery import app as celery_app
from partyhub.jobs.tasks import render as render_task
from partyhub.models import Image, Render
from tests.conftest import receive_until

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_worker(start_worker):
    return start_worker()


async def test_a_render_reaches_every_member_through_celery_and_redis(
    celery_worker, party, host, guest
):
    host_ws = host.websocket(party.code, since=party.last_seq)
    guest_ws = guest.websocket(party.code, since=party.last_seq)
    assert (await host_ws.connect())[0] and (await guest_ws.connect())[0]

    await host_ws.send_json_to(
        {
            "type": "prompt.submit",
            "text": "an empty chair",
            "params": {"width": 64, "height": 64, "steps": 2, "seed": 5},
        }
    )
    frames = await receive_until(guest_ws, "render.done", timeout=180)
    assert [f["type"] for f in frames if "seq" in f] == [
        "prompt.added",
        "render.queued",
        "render.done",
    ]
    assert any(f["type"] == "render.progress" for f in frames)  # sent by the worker process
    done = frames[-1]
    assert [i["seed"] for i in done["images"]] == [5]
    await receive_until(host_ws, "render.done", timeout=30)

    render = await database_sync_to_async(Render.objects.get)(pk=done["render"])
    assert (render.status, render.attempts) == (Render.Status.DONE, 1)

    # Deliver the same render again, then a new one: the worker takes them in order, so once the
    # new one is done the duplicate has been handled, and it must have stored nothing.
    render_task.delay(render.pk)
    await host_ws.send_json_to(
        {
            "type": "prompt.submit",
            "text": "a second chair",
            "params": {"width": 64, "height": 64, "steps": 2},
        }
    )
    await receive_until(guest_ws, "render.done", timeout=120)
    count = database_sync_to_async(Image.objects.filter(render_id=render.pk).count)
    assert await count() == 1
    await render.arefresh_from_db()
    assert render.attempts == 1
    await host_ws.disconnect()
    await guest_ws.disconnect()


def test_the_worker_knows_every_task_beat_sends():
    celery_app.loader.import_default_modules()
    for entry in celery_app.conf.beat_schedule.values():
        assert entry["task"] in celery_app.tasks


def test_celery_is_configured_for_at_least_once_delivery(settings):
    conf = celery_app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert settings.RENDER_MAX_ATTEMPTS == 3


def test_the_worker_parent_does_not_import_torch():
    # CUDA must never be initialised in a Celery parent before it forks its children.
    code = "import partyhub, partyhub.jobs.tasks, streams.tasks, sys; print('torch' in sys.modules)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
