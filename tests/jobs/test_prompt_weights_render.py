"""Prompt weights (issue 22, item 3) through the party: submitted with `"weights": true`,
refused before anything is stored when malformed or for a model that cannot weigh, rendered by
the worker (alone and batched with unweighted renders of another party), written into the PNG,
the archive and the export as written, and counted by the composer's token endpoint."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image as PILImage

from partyhub.jobs.runner import run_render
from partyhub.models import Event, Party, Prompt, Render
from tests.conftest import render_pixels

pytestmark = pytest.mark.django_db(transaction=True)

# The offline model's own size, where its colours show (tests/generation/test_prompt_weights.py).
SMALL = {"width": 128, "height": 128, "steps": 10, "sampler": "Euler", "seed": 3}
WEIGHTED = "a (red:0) circle on a white background"


def submit(party, member, text, **params):
    return party.submit_prompt(member, text, params={**SMALL, **params})


def parameters(image):
    """The `parameters` text of the stored PNG."""
    with PILImage.open(image.file.path) as png:
        return png.text["parameters"]


def test_a_participant_renders_a_weighted_prompt_and_it_is_kept_as_written(party, member):
    prompt, render = submit(party, member, WEIGHTED, weights=True)
    assert render.params["weights"] is True
    added = Event.objects.get(party=party, type="prompt.added").payload["prompt"]
    assert (added["text"], added["params"]["weights"]) == (WEIGHTED, True)

    run_render(render.pk)

    render.refresh_from_db()
    assert render.status == Render.Status.DONE, render.error_message
    (image,) = render.images.all()
    text = parameters(image)
    assert text.splitlines()[0] == WEIGHTED  # as written, as AUTOMATIC1111 writes it
    assert "Emphasis" not in text  # A1111's default reads the weights, as they were rendered
    assert image.parameters() == text


def test_without_weights_the_png_says_its_brackets_are_text(party, pm):
    _, render = submit(party, pm, WEIGHTED)
    _, plain = submit(party, pm, "a red circle on a white background")
    run_render(render.pk)
    run_render(plain.pk)
    (image,) = Render.objects.get(pk=render.pk).images.all()
    text = parameters(image)
    assert text.splitlines()[0] == WEIGHTED
    # A1111 reads "Emphasis: None" as: parentheses are characters, as they were rendered here.
    assert text.endswith(", Emphasis: None")
    assert "Emphasis" not in parameters(Render.objects.get(pk=plain.pk).images.get())


def test_clip_scores_a_weighted_prompt_by_its_words(party, pm, offline_clip):
    from generation import scoring

    _, render = submit(party, pm, "a ((yellow:1.4)) [star] on a blue background", weights=True)
    run_render(render.pk)
    (image,) = Render.objects.get(pk=render.pk).images.all()
    with PILImage.open(image.file.path) as png:
        (plain,) = scoring.image_scores(
            [png.convert("RGB")], "a yellow star on a blue background", None
        )
    assert image.score == pytest.approx(plain["score"], abs=1e-4)


def test_weights_change_what_the_worker_draws(party, pm):
    _, weighed = submit(party, pm, WEIGHTED, weights=True)
    _, literal = submit(party, pm, WEIGHTED)
    run_render(weighed.pk)
    run_render(literal.pk)
    (a,), (b,) = render_pixels(weighed), render_pixels(literal)
    assert np.abs(a - b).mean() > 2  # of 255; a picture differs from itself by 0


@pytest.mark.parametrize(
    ("text", "params", "code"),
    [
        ("a (red:abc) circle", {"weights": True}, "invalid_prompt"),
        ("a (red circle", {"weights": True}, "invalid_prompt"),
        ("a (red:5) circle", {"weights": True}, "invalid_prompt"),
        ("a red circle", {"weights": True, "negative": "[blue"}, "invalid_prompt"),
        ("a red circle", {"weights": "yes"}, "invalid_param"),
    ],
)
def test_bad_weights_are_refused_and_nothing_is_stored(party, member, refused, text, params, code):
    events = Event.objects.filter(party=party).count()
    message = {"type": "prompt.submit", "text": text, "params": {**SMALL, **params}}
    assert refused(member, message) == code
    proposal = {**message, "type": "prompt.propose"}
    assert refused(member, proposal) == code
    assert not Prompt.objects.filter(party=party).exists()
    assert Event.objects.filter(party=party).count() == events


def test_a_model_that_cannot_weigh_refuses_weights(party, pm, refused, monkeypatch):
    from generation.presets import Preset

    monkeypatch.setattr(Preset, "is_available", lambda preset: True)
    message = {
        "type": "prompt.submit",
        "text": "a red circle",
        "params": {"model": "offline-ar", "weights": True},
    }
    assert refused(pm, message) == "invalid_param"
    assert not Prompt.objects.filter(party=party).exists()


def test_a_stored_render_with_broken_weights_fails_alone(party, pm, settings):
    """A row the checks never saw (written before them, or by other code) fails on its own;
    the render batched with it is drawn."""
    settings.PARTYHUB_MAX_BATCH = 8
    prompt, broken = submit(party, pm, "a (red:1.5) circle", weights=True)
    _, fine = submit(party, pm, "a blue square", weights=True)
    Prompt.objects.filter(pk=prompt.pk).update(text="a (red circle")

    run_render(broken.pk)

    broken.refresh_from_db()
    fine.refresh_from_db()
    assert broken.status == Render.Status.FAILED
    assert broken.error_code == "invalid_prompt"
    assert "the '(' at character 3 is never closed" in broken.error_message
    assert fine.status == Render.Status.DONE


def test_weighted_and_plain_renders_of_two_parties_share_a_pass_as_if_alone(party, pm, settings):
    other, stranger = Party.start(topic="distant planets", session_key="q" * 32, host_name="Zed")
    settings.PARTYHUB_MAX_BATCH = 1
    solo_weighed = submit(party, pm, WEIGHTED, weights=True)[1]
    solo_literal = submit(other, stranger, WEIGHTED)[1]
    run_render(solo_weighed.pk)
    run_render(solo_literal.pk)

    settings.PARTYHUB_MAX_BATCH = 8
    weighed = submit(party, pm, WEIGHTED, weights=True)[1]
    literal = submit(other, stranger, WEIGHTED)[1]
    assert weighed.batch_key == literal.batch_key  # weights are per image, not per pass
    run_render(weighed.pk)

    for render in (weighed, literal):
        render.refresh_from_db()
        assert render.status == Render.Status.DONE
    for solo, batched in ((solo_weighed, weighed), (solo_literal, literal)):
        (alone,), (together,) = render_pixels(solo), render_pixels(batched)
        assert np.abs(alone - together).max() <= 2  # float noise of a larger matmul


def test_the_export_keeps_the_text_as_written_and_the_param(party, pm, host):
    _, render = submit(party, pm, WEIGHTED, weights=True, negative="[blue]")
    run_render(render.pk)
    response = host.client.get(f"/p/{party.code}/export.zip")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    manifest = json.loads(archive.read("manifest.json"))
    (prompt,) = manifest["prompts"]
    assert (prompt["text"], prompt["params"]["weights"]) == (WEIGHTED, True)
    (entry,) = manifest["images"]
    with PILImage.open(io.BytesIO(archive.read(entry["file"]))) as png:
        lines = png.text["parameters"].splitlines()
    assert lines[:2] == [WEIGHTED, "Negative prompt: [blue]"]


# --- The composer's token counter -------------------------------------------------------------


def count(client, body, model="offline"):
    return client.post(f"/api/models/{model}/tokens", json.dumps(body), "application/json")


def test_the_counter_counts_what_the_encoder_reads_and_lists_the_weights(client):
    """No session needed, as for every count."""
    plain = count(client, {"text": "a red circle, big"}).json()
    answer = count(client, {"text": "a ((red:1.5)) [circle], big", "weights": True})
    assert answer.status_code == 200
    body = answer.json()
    assert body["tokens"] == plain["tokens"] == 5
    assert body["limit"] == 22
    assert [(piece["text"], round(piece["weight"], 4)) for piece in body["weighted"]] == [
        ("red", 1.65),
        ("circle", 0.9091),
    ]
    literal = count(client, {"text": "a ((red:1.5)) [circle], big"}).json()
    assert literal["tokens"] > 5 and "weighted" not in literal


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({"text": "a (red:abc)", "weights": True}, "invalid_prompt", "must be a number"),
        ({"text": "a (red", "weights": True}, "invalid_prompt", "is never closed"),
        ({"text": "a red", "weights": 1}, "invalid_param", "weights must be true or false"),
    ],
)
def test_the_counter_refuses_what_a_submit_would(client, body, code, says):
    answer = count(client, body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == code
    assert says in answer.json()["error"]["message"]


def test_the_counter_refuses_weights_for_a_model_that_cannot_weigh(client, monkeypatch):
    from generation.presets import Preset

    monkeypatch.setattr(Preset, "is_available", lambda preset: True)
    answer = count(client, {"text": "a red circle", "weights": True}, model="offline-ar")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_param"
    assert answer.json()["error"]["message"].startswith("offline-ar takes no prompt weights")
