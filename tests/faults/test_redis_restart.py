"""Redis restarted while people submit (issue 7, item 6), with every part real: a Redis server of
the test's own (so it can be killed and started again), Daphne and a Celery prefork worker and
`celery beat` on it, members on WebSockets submitting prompts the whole time.

Redis keeps nothing on disk here, as on this project's machines: a restart loses the queued
messages and the channel layer's subscriptions. Every submission must still end one of two ways:
refused with a clear error (`queue_unavailable`, or the socket closed so the client knows to
resubmit), or taken, and then rendered once Redis is back. A canary render submitted after the
restart must finish."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import websockets
from channels.db import database_sync_to_async

from partyhub.models import Prompt, Render
from tests.conftest import Person, test_database_url
from tests.workers import REPO

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MEMBERS = 4
SUBMIT_EVERY = 0.3  # seconds, per member
DOWN_AFTER, DOWN_FOR, UP_FOR = 3.0, 4.0, 3.0  # seconds of submitting before, during, after
CANARY_WITHIN = 60  # seconds: Celery's reconnection backs off, but not for minutes
PARAMS = {"model": "overhead-probe", "width": 64, "height": 64, "steps": 2}


class RedisServer:
    """A redis-server process on a port of its own that the test can kill and start again."""

    def __init__(self, folder):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.folder, self.process = folder, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process.poll() is None:
        server.kill()


@pytest.fixture
def beat(redis_server, tmp_path):
    """`celery beat` on the test's Redis: it requeues renders every few seconds."""
    env = {**os.environ, "DATABASE_URL": test_database_url(), "REDIS_URL": redis_server.url}
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "partyhub", "beat", "--loglevel", "INFO"]
        + ["--schedule", str(tmp_path / "beat-schedule")],
        cwd=REPO,
        env=env,
        stdout=(tmp_path / "beat.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    yield process
    process.kill()
    process.wait(timeout=10)


class Submitter:
    """One member who submits a prompt every SUBMIT_EVERY seconds until told to stop, and
    records how each submission ended: taken (its prompt.added came back), refused (an error
    frame), or cut off (the socket closed before an answer; it reconnects with `since`, and the
    archive says whether the prompt was taken)."""

    def __init__(self, port, party, person, name):
        self.port, self.party, self.person, self.name = port, party, person, name
        self.outcomes = {}  # text -> "taken" | "refused:<code>" | "cut off"
        self.since = party.last_seq
        self.ws = None

    async def connect(self):
        while True:
            try:
                self.ws = await websockets.connect(
                    f"ws://127.0.0.1:{self.port}/ws/parties/{self.party.code}/?since={self.since}",
                    additional_headers={
                        "Origin": f"http://127.0.0.1:{self.port}",
                        "Cookie": f"sessionid={self.person.session_key}",
                    },
                )
                return
            except (OSError, websockets.InvalidStatus):
                await asyncio.sleep(0.5)

    async def submit(self, text):
        try:
            message = {"type": "prompt.submit", "text": text, "params": PARAMS}
            await self.ws.send(json.dumps(message))
            while True:
                frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=15))
                self.since = max(self.since, frame.get("seq", 0))
                if frame["type"] == "error":
                    return f"refused:{frame['code']}"
                if frame["type"] == "prompt.added" and frame["prompt"]["text"] == text:
                    return "taken"
        except (websockets.ConnectionClosed, TimeoutError):
            await self.connect()
            return "cut off"

    async def run(self, stop):
        await self.connect()
        i = 0
        while not stop.is_set():
            text = f"{self.name} prompt {i}"
            self.outcomes[text] = await self.submit(text)
            i += 1
            await asyncio.sleep(SUBMIT_EVERY)
        await self.ws.close()


async def test_submissions_survive_a_redis_restart(
    redis_server, daphne, start_worker, beat, party, host, settings
):
    settings.PARTYHUB_OVERHEAD_PROBE = True
    env = {"REDIS_URL": redis_server.url, "PARTYHUB_OVERHEAD_PROBE": "1"}
    port = daphne(env=env)
    start_worker(broker=redis_server.url, queues="renders,streams", env=env)
    people = [host] + [await database_sync_to_async(Person)(f"P{i}") for i in range(1, MEMBERS)]
    for person in people[1:]:
        await database_sync_to_async(party.join)(person.session_key, person.name)
    await party.arefresh_from_db()
    submitters = [Submitter(port, party, p, p.name) for p in people]

    stop = asyncio.Event()
    running = [asyncio.create_task(s.run(stop)) for s in submitters]
    await asyncio.sleep(DOWN_AFTER)
    redis_server.kill()
    await asyncio.sleep(DOWN_FOR)
    redis_server.start()
    await asyncio.sleep(UP_FOR)
    stop.set()
    await asyncio.gather(*running)

    outcomes = {text: o for s in submitters for text, o in s.outcomes.items()}
    stored = set(await database_sync_to_async(list)(Prompt.objects.values_list("text", flat=True)))
    for text, outcome in outcomes.items():
        if outcome == "taken":
            assert text in stored
        elif outcome.startswith("refused"):
            assert outcome == "refused:queue_unavailable", outcome
    print({o: list(outcomes.values()).count(o) for o in set(outcomes.values())})

    # A canary after the restart renders, and so does every prompt that was taken.
    canary = Submitter(port, party, host, "canary")
    await canary.connect()
    started = time.monotonic()
    assert await canary.submit("canary") == "taken"
    await canary.ws.close()
    deadline = started + CANARY_WITHIN
    while not await Render.objects.filter(prompt__text="canary", status="done").aexists():
        assert time.monotonic() < deadline, "the canary never rendered"
        await asyncio.sleep(0.2)
    print(f"canary rendered {time.monotonic() - started:.1f} s after it was submitted")
    while True:
        unfinished = await Render.objects.filter(
            status__in=[Render.Status.QUEUED, Render.Status.RUNNING]
        ).acount()
        if not unfinished:
            break
        assert time.monotonic() < deadline, f"{unfinished} renders never finished"
        await asyncio.sleep(0.5)
    ends = await database_sync_to_async(list)(Render.objects.values_list("status", "error_code"))
    for status, code in ends:
        assert status == Render.Status.DONE or code == "queue_unavailable", (status, code)
    texts = await database_sync_to_async(list)(Prompt.objects.values_list("text", flat=True))
    assert len(texts) == len(set(texts))  # nothing stored twice
