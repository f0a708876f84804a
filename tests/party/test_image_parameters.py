"""Each image's A1111 `parameters` text reaches clients (the snapshot and render.done) as the
stored PNG carries it, so the room shows and copies it without reading the file."""

import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from partyhub.models import Event

pytestmark = pytest.mark.django_db


def png_parameters(image):
    with default_storage.open(image.file.name) as stored:
        return PILImage.open(stored).text["parameters"]


def test_it_sends_the_pngs_parameters_text(party, member, image, guest):
    stored = png_parameters(image)
    assert stored.startswith("a chair\nSteps: 1, Sampler: Euler a, CFG scale: ")
    assert f"Seed: {image.seed}, Size: 64x64, Model: offline" in stored

    snap = guest.client.get(f"/api/parties/{party.code}").json()
    assert [i["parameters"] for i in snap["images"]] == [stored]
    done = Event.objects.get(party=party, type="render.done")
    assert [i["parameters"] for i in done.payload["images"]] == [stored]


def test_a_negative_prompt_and_a_walk_are_in_it(party, member):
    from partyhub.jobs.runner import run_render

    params = {"width": 64, "height": 64, "steps": 1, "negative": "blue", "mode": "walk"}
    params |= {"walk_to": "a red star", "frames": 2}
    _, render = party.submit_prompt(member, "a green circle", params=params)
    run_render(render.pk)
    frames = render.images.order_by("index")
    texts = [png_parameters(frame) for frame in frames]
    assert all("\nNegative prompt: blue\n" in text for text in texts)
    assert all("Walk to: a red star, " in text for text in texts)
    assert [frame.as_dict()["parameters"] for frame in frames] == texts
