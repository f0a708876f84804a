import json

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from partyhub.asgi import application
from partyhub.models import Party

ORIGIN = b"http://localhost:8000"  # a host in the default ALLOWED_HOSTS


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """One folder of models for the whole run: the offline placeholder is built into it once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def isolated_files(settings, tmp_path, models_dir):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PARTYHUB_MODELS_DIR = models_dir
    # The autopilot would render for streams in the middle of other tests; its own tests call it.
    settings.PARTYHUB_AUTOPILOT = False


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


async def receive_until(communicator, event_type, timeout=30):
    """Frames up to and including the first one of `event_type`."""
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        frames.append(frame)
        if frame["type"] == event_type:
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
