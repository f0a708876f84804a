import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from config.asgi import application
from core.errors import ApiError
from generation.modes import slots_for
from generation.pipelines import drop_flagged, generate_batch
from partyhub import actions, consumers
from partyhub.jobs import embedded
from partyhub.models import Image, Member, Party

# The browser tests' fixtures (make run, Chromium, screenshots) and the Celery workers' ones,
# shared by their modules.
pytest_plugins = ["browsing", "workers"]

ORIGIN = b"http://localhost:8000"  # a host in the default ALLOWED_HOSTS
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """One folder of models for the whole run (empty: the offline model loads from the repo)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Every test starts with no requests counted (the tests all come from one address)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def isolated_files(settings, tmp_path, models_dir):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PARTYHUB_MODELS_DIR = models_dir
    # The autopilot would render for streams in the middle of other tests; its own tests call it.
    settings.PARTYHUB_AUTOPILOT = False
    # Scores and the streams' topic guard only where a test asks for a CLIP (clip_on,
    # offline_clip), so the others do not depend on what a model thinks of their prompts.
    settings.PARTYHUB_CLIP_PRETRAINED = ""


@pytest.fixture(autouse=True)
def embedded_worker_settled(request):
    """Each event loop a test runs (an async test's, each async_to_sync call's) starts the
    embedded render worker when a request or socket goes through config/asgi.py; what the worker
    handed its thread runs on after that loop stops: a look for the next render, the end of one.
    Its query must be done before the database is flushed: beside the flush's TRUNCATE of every
    table, it deadlocked now and then."""
    if {"db", "transactional_db"} & set(request.fixturenames):
        # pytest-django's own fixture behind both: set up first, so it is torn down after this.
        assert "_django_db_helper" in request.fixturenames, "pytest-django renamed its helper"
    if "_django_db_helper" in request.fixturenames:
        request.getfixturevalue("_django_db_helper")
    yield
    if not embedded.wait_until_idle(timeout=120):
        # Every later test would wait as long behind it.
        pytest.exit("the embedded worker's thread is stuck in a call (see its stack)", returncode=1)


def new_session_key():
    session = SessionStore()
    session.create()
    return session.session_key


class Person:
    """Someone with a browser session: an HTTP client and a way to open WebSockets."""

    def __init__(self, name):
        self.name = name
        self.session_key = new_session_key()
        self.client = Client(enforce_csrf_checks=False)
        self.client.cookies["sessionid"] = self.session_key

    def post_json(self, path, body, **kwargs):
        return self.client.post(path, json.dumps(body), content_type="application/json", **kwargs)

    def websocket(self, code, since=None, origin=ORIGIN):
        path = f"/ws/parties/{code}/" + (f"?since={since}" if since is not None else "")
        headers = [(b"cookie", f"sessionid={self.session_key}".encode())]
        if origin is not None:
            headers.append((b"origin", origin))
        return WebsocketCommunicator(application, path, headers=headers)


@pytest.fixture
def host():
    return Person("Ann")


@pytest.fixture
def guest():
    return Person("Bob")


@pytest.fixture
def outsider():
    return Person("Eve")


@pytest.fixture
def party(db, host, guest):
    """A party on a topic: `host` is its Prompt Master, `guest` a participant."""
    party, _ = Party.start(topic="loneliness", session_key=host.session_key, host_name=host.name)
    party.join(guest.session_key, guest.name)
    return party


@pytest.fixture
def broadcasts(monkeypatch):
    """Every render frame sent to a party, and a hook called with each one."""
    sent, hooks = [], []

    def record(group, message):
        frame = json.loads(message["frame"])  # encoded once by the worker, as members get it
        sent.append(frame)
        for hook in hooks:
            hook(frame)

    monkeypatch.setattr("partyhub.jobs.watch.group_send", record)
    return sent, hooks


@pytest.fixture
def pm(party, host):
    """The party's Prompt Master, as a member row."""
    return Member.objects.get(session_key=host.session_key)


@pytest.fixture
def member(party, guest):
    """A participant of the party."""
    return Member.objects.get(session_key=guest.session_key)


@pytest.fixture
def expert(party, outsider):
    """`outsider`, joined as the party's Art Expert."""
    return party.join(outsider.session_key, "Eve", role=Member.Role.ART_EXPERT)


@pytest.fixture
def image(party, member):
    """An image the participant rendered (64×64, offline model)."""
    from partyhub.jobs.runner import run_render

    params = {"width": 64, "height": 64, "steps": 1}
    _, render = party.submit_prompt(member, "a chair", params=params)
    run_render(render.pk)
    return Image.objects.get(render=render)


@pytest.fixture
def refused():
    """refused(member, message): the error code the server answers a client message with."""

    def refused(member, message):
        with pytest.raises(ApiError) as error:
            # As the party socket takes a text frame: parsed and checked, then handled.
            actions.handle(member.pk, consumers._message(json.dumps(message)))
        return error.value.code

    return refused


# --- A tiny CLIP model (scoring, streams, search) ------------------------------------------------

TINY_CLIP = "partyhub-tiny-clip"  # open_clip names a registered config after its file
TINY_CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """A tiny open_clip model with random weights (nothing downloaded): its config and checkpoint
    files, its name, and the model itself as the reference."""
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("clip")
    config = folder / f"{TINY_CLIP}.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(TINY_CLIP)
    checkpoint = folder / "tiny-clip.pt"
    torch.save(model.state_dict(), checkpoint)
    return {
        "name": TINY_CLIP,
        "config": config,
        "checkpoint": checkpoint,
        "model": model.eval(),
        "preprocess": preprocess,
    }


@pytest.fixture
def clip_on(settings, tiny_clip):
    """CLIP scoring (and search by meaning) with the tiny model, loaded from its files."""
    settings.PARTYHUB_CLIP_MODEL = TINY_CLIP
    settings.PARTYHUB_CLIP_CONFIG = str(tiny_clip["config"])
    settings.PARTYHUB_CLIP_PRETRAINED = str(tiny_clip["checkpoint"])
    return tiny_clip


@pytest.fixture
def offline_clip(settings):
    """The bundled offline CLIP, as `make run` uses it with the offline model."""
    settings.PARTYHUB_CLIP_MODEL = settings.OFFLINE_CLIP.name
    settings.PARTYHUB_CLIP_CONFIG = f"{settings.OFFLINE_CLIP}.json"
    settings.PARTYHUB_CLIP_PRETRAINED = f"{settings.OFFLINE_CLIP}.safetensors"


async def receive_until(communicator, event_type, timeout=30):
    """Frames up to and including the first one of `event_type` (a type, or a test a frame
    passes)."""
    stop = event_type if callable(event_type) else lambda frame: frame["type"] == event_type
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        frames.append(frame)
        if stop(frame):
            return frames


def stored_pixels(image):
    """A stored image's RGB pixels as signed integers, so the difference of two cannot wrap."""
    import numpy as np
    from django.core.files.storage import default_storage
    from PIL import Image as PILImage

    with default_storage.open(image.file.name) as stored:
        return np.asarray(PILImage.open(stored).convert("RGB"), dtype=np.int16)


def render_pixels(render):
    """The pixels of each of a render's stored images, in index order."""
    return [stored_pixels(image) for image in render.images.order_by("index")]


# --- Real services: Redis, and Daphne processes serving the test database ----------------------


def test_database_url():
    """The test database, for server and worker processes started by a test."""
    from django.db import connection

    assert connection.vendor == "postgresql", "run with DATABASE_URL pointing at PostgreSQL"
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


@pytest.fixture
def redis_url():
    url = os.environ.get("PARTYHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    import redis

    client = redis.Redis.from_url(url)
    client.ping()  # fails loudly when Redis is not running: these tests need the real one
    client.flushdb()
    yield url
    client.flushdb()


@pytest.fixture
def redis_layer(settings, redis_url):
    """This process's channel layer is the Redis one that server and worker processes share."""
    from config.settings import redis_channel_layer

    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(redis_url)}


@pytest.fixture
def daphne(redis_layer, redis_url, settings, tmp_path):
    """Starts Daphne processes on loopback serving the test database over the Redis channel
    layer, as in production; returns each one's port (and its process, `with_process=True`);
    `env` adds to or overrides its environment. All are stopped after the test."""
    started = []

    def start(with_process=False, env=None):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {
            **os.environ,
            "DEBUG": "0",
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": redis_url,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "PARTYHUB_AUTOPILOT": "0",
            **(env or {}),
        }
        log = tmp_path / f"daphne-{port}.log"
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + ["config.asgi:application"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        started.append(server)
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"daphne exited: {log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return (port, server) if with_process else port
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"daphne did not start: {log.read_text()}") from None
                time.sleep(0.2)

    yield start
    for server in started:
        server.terminate()
        server.wait(timeout=30)


def generate_alone(preset, prompt, params, on_step, should_stop):
    """One render's images straight from the engine, as the render job asks for them: (images,
    seeds), less those a safety checker flagged."""
    slots = slots_for(prompt, params)
    images, flags = generate_batch(preset, slots, on_step, should_stop)
    return drop_flagged(images, [slot.seed for slot in slots], flags)


@pytest.fixture
def watching(monkeypatch):
    """`watching(stream)`: one viewer watches the stream until the test ends, so its autopilot
    renders (it renders nothing for a stream nobody watches)."""
    from streams import viewers

    # No socket stamps this viewer again: it must not go stale while the test runs.
    monkeypatch.setattr(viewers, "STAMP_SECONDS", 3600)
    watched = []

    def watch(stream):
        viewers.stamp(stream.pk, "a test's viewer")
        watched.append(stream.pk)

    yield watch
    for stream_id in watched:
        viewers.leave(stream_id, "a test's viewer")
