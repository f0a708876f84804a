"""Who made a stream's image, as the watch page says it: the autopilot once, people by name."""

import pytest
from django.test import Client

from partyhub.jobs.runner import run_render
from partyhub.models import Member
from streams.models import AUTOPILOT_KEY, Stream, image_message

pytestmark = pytest.mark.django_db


def image_by(stream, key, name, text):
    author, _ = Member.objects.get_or_create(
        party=stream.party, session_key=key, defaults={"name": name}
    )
    _, render = stream.party.submit_prompt(
        author, stream.bind(text), params={"width": 64, "height": 64, "steps": 1}
    )
    run_render(render.pk)
    return render.images.get()


def test_an_autopilot_image_reads_by_autopilot_once():
    stream = Stream.create(slug="moons", title="Moons", topic="moons of giant planets")
    auto = image_by(stream, AUTOPILOT_KEY, "autopilot", "a frozen moon")
    mine = image_by(stream, "user:1", "mia", "a moon of my own")
    assert image_message(auto)["image"]["autopilot"] is True
    assert image_message(mine)["image"]["autopilot"] is False

    page = Client().get("/s/moons/").content.decode()
    assert page.count("by autopilot") == 1
    assert "(autopilot)" not in page
    assert "by mia" in page
