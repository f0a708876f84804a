"""A member's connection dropped mid-render and resumed with `since`, on another Daphne process
(issue 7, item 7): two Daphne processes on loopback share the Redis channel layer and the
PostgreSQL test database, and a Celery prefork worker renders (tests/faulty_worker.py, slow
steps). Between the connections the member must see every archived event once, in order."""

import asyncio
import json

import pytest
import websockets
from channels.db import database_sync_to_async

from partyhub.models import Member
from tests.faults.test_worker_faults import FAULTY, PROBE

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RENDERS = 3
PARAMS = {"model": "overhead-probe", "width": 64, "height": 64, "steps": 20}


async def connect(port, party, person, since):
    return await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/parties/{party.code}/?since={since}",
        additional_headers={
            "Origin": f"http://127.0.0.1:{port}",
            "Cookie": f"sessionid={person.session_key}",
        },
    )


async def read_until(ws, stop, frames):
    """Appends frames to `frames` up to and including the first for which `stop` holds."""
    while True:
        frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=60)))
        if stop(frames[-1]):
            return


def mid_render(render_id):
    return lambda f: f["type"] == "render.progress" and f["render"] == render_id and f["step"] >= 2


async def test_a_dropped_connection_resumes_on_another_daphne_without_gaps_or_repeats(
    daphne, start_worker, party, host, settings
):
    settings.PARTYHUB_OVERHEAD_PROBE = True
    ports = [daphne(), daphne()]
    start_worker(program=FAULTY, env=PROBE)
    pm = await Member.objects.aget(party=party, session_key=host.session_key)
    start = party.last_seq

    ws = await connect(ports[0], party, host, since=start)
    renders = []
    for i in range(RENDERS):
        _, render = await database_sync_to_async(party.submit_prompt)(
            pm, f"an empty chair, take {i}", params=PARAMS
        )
        renders.append(render.pk)

    # Drop the connection in the middle of each render, without a closing handshake, and
    # come back on the other Daphne process with the last seq seen.
    seen = []
    for number, render_id in enumerate(renders, start=1):
        await read_until(ws, mid_render(render_id), seen)
        ws.transport.abort()
        since = max(f["seq"] for f in seen if "seq" in f)
        ws = await connect(ports[number % 2], party, host, since=since)
    await read_until(ws, lambda f: f["type"] == "render.done" and f["render"] == renders[-1], seen)
    await ws.close()

    seqs = [f["seq"] for f in seen if "seq" in f]
    await party.arefresh_from_db()
    assert seqs == list(range(start + 1, party.last_seq + 1))  # none missed, none twice, in order
    done = [f["render"] for f in seen if f["type"] == "render.done"]
    assert done == renders
