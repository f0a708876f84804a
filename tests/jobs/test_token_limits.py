"""Prompts are never silently cut (issue 16, item 6): text longer than the model's text encoder
reads is refused with `prompt_too_long`, naming the field, its count and the limit; the composer
counts against the limit with POST /api/models/<name>/tokens."""

import json
import random
import shutil

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client

from core.errors import ApiError
from generation import tokens
from generation.presets import BUNDLED_WEIGHTS, PRESETS, get_preset
from partyhub import actions
from partyhub.jobs.runner import run_render
from partyhub.models import Event, Prompt, Render
from streams import autopilot
from streams.models import Stream, Submission

pytestmark = pytest.mark.django_db

OFFLINE = PRESETS["offline"]
# 22 tokens for the offline model: every word of its world is one token, the comma one more.
AT_LIMIT = (
    "a small red circle above a large blue square on a white background, outlined, striped "
    "red green blue pink grey"
)
OVER = AT_LIMIT + " black"  # 23
SMALL = {"width": 64, "height": 64, "steps": 1}


@pytest.fixture(scope="module")
def offline_tokenizer():
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(BUNDLED_WEIGHTS / "diffusion" / "tokenizer")


def rejection(member, message):
    """The ApiError a client message is refused with."""
    with pytest.raises(ApiError) as error:
        actions.handle(member.pk, message)
    return error.value


def count_tokens(text):
    return Client().post(
        "/api/models/offline/tokens", json.dumps({"text": text}), content_type="application/json"
    )


# --- The limits -------------------------------------------------------------------------------


def test_the_offline_limit_is_its_window_less_the_start_and_end_tokens(offline_tokenizer):
    from offline import autoregressive as offline_ar

    assert offline_tokenizer.model_max_length == 24
    assert offline_tokenizer("").input_ids == [
        offline_tokenizer.bos_token_id,
        offline_tokenizer.eos_token_id,
    ]
    assert tokens.token_limit(OFFLINE) == 22
    assert tokens.token_count(OFFLINE, AT_LIMIT) == 22
    assert tokens.token_count(OFFLINE, OVER) == 23
    # offline-ar cuts its caption to the same window with the same tokenizer.
    assert offline_ar.TEXT_TOKENS == offline_tokenizer.model_max_length


def test_the_pipeline_reads_22_tokens_and_cuts_the_23rd():
    """What the limit stands for: diffusers' encode_prompt keeps the 22nd token and loses the
    23rd (BOS + 22 + EOS fill the 24 places)."""
    from generation.pipelines import get_pipeline

    pipe = get_pipeline(OFFLINE)

    def encode(text):
        return pipe.encode_prompt(text, "cpu", 1, False)[0]

    assert encode(OVER).equal(encode(AT_LIMIT))  # "black" was cut
    assert not encode(AT_LIMIT).equal(encode(AT_LIMIT.rsplit(" ", 1)[0]))  # "grey" was read


def test_models_that_read_the_whole_prompt_have_no_limit(settings):
    settings.PARTYHUB_OVERHEAD_PROBE = True
    assert tokens.token_limit(get_preset("janus-pro-1b")) is None  # its processor never cuts
    assert tokens.token_limit(get_preset("overhead-probe")) is None  # no text encoder
    assert tokens.token_count(get_preset("overhead-probe"), OVER) is None


def test_sdxl_counts_against_the_smaller_of_its_two_windows(settings, tmp_path):
    folder = tmp_path / "sdxl-turbo"
    source = BUNDLED_WEIGHTS / "diffusion" / "tokenizer"
    for name, size in (("tokenizer", 24), ("tokenizer_2", 20)):
        shutil.copytree(source, folder / name)
        config = folder / name / "tokenizer_config.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), "model_max_length": size}))
    (folder / "model_index.json").write_text("{}")
    settings.PARTYHUB_MODELS_DIR = tmp_path
    sdxl = get_preset("sdxl-turbo")
    assert tokens.token_limit(sdxl) == 18
    message = tokens.too_long(sdxl, "text", ", ".join(["a red circle"] * 5))
    assert message.startswith("text is 19 tokens; sdxl-turbo reads at most 18 (its text encoders'")


def test_weights_without_a_tokenizer_are_not_counted(settings, tmp_path, caplog):
    """Their pipeline cannot load either (its render fails saying why), so nothing is cut; the
    models list and the prompt's checks go on."""
    (tmp_path / "sd-turbo").mkdir()
    (tmp_path / "sd-turbo" / "model_index.json").write_text("{}")
    settings.PARTYHUB_MODELS_DIR = tmp_path
    assert tokens.token_limit(get_preset("sd-turbo")) is None
    assert "cannot read the tokenizer of sd-turbo" in caplog.text
    listed = {preset["name"]: preset for preset in Client().get("/api/models").json()}
    assert listed["sd-turbo"]["available"] and listed["sd-turbo"]["token_limit"] is None


def test_the_models_list_says_each_limit():
    response = Client().get("/api/models")
    limits = {preset["name"]: preset["token_limit"] for preset in response.json()}
    assert limits["offline"] == 22
    assert limits["janus-pro-1b"] is None
    # Models without weights here are not counted: they are refused as model_unavailable.
    assert limits["sd-turbo"] is None and limits["offline-ar"] is None


# --- Party prompts ----------------------------------------------------------------------------


def test_an_over_long_prompt_is_refused_naming_count_and_limit(party, member):
    before = Event.objects.filter(party=party).count()
    error = rejection(member, {"type": "prompt.submit", "text": OVER, "params": SMALL})
    assert (error.code, error.status) == ("prompt_too_long", 400)
    assert error.message.startswith(
        "text is 23 tokens; offline reads at most 22 (its text encoder's 24 less the start and "
        "end tokens). Shorten it by 1"
    )
    assert not Prompt.objects.filter(party=party).exists()
    assert not Render.objects.filter(party=party).exists()
    assert Event.objects.filter(party=party).count() == before


def test_a_proposal_is_counted_too(party, member, refused):
    message = {"type": "prompt.propose", "text": OVER, "params": SMALL}
    assert refused(member, message) == "prompt_too_long"
    assert not Prompt.objects.filter(party=party).exists()


@pytest.mark.parametrize(
    "params, field",
    [
        ({"negative": OVER}, "negative"),
        ({"mode": "walk", "walk_to": OVER, "frames": 2}, "walk_to"),
    ],
)
def test_an_over_long_negative_or_walk_end_is_refused(party, member, params, field):
    message = {"type": "prompt.submit", "text": "a red circle", "params": {**SMALL, **params}}
    error = rejection(member, message)
    assert error.code == "prompt_too_long"
    assert error.message.startswith(f"{field} is 23 tokens; offline reads at most 22")
    assert not Prompt.objects.filter(party=party).exists()


def test_a_prompt_at_the_limit_renders(party, member):
    params = {**SMALL, "negative": AT_LIMIT}
    actions.handle(member.pk, {"type": "prompt.submit", "text": AT_LIMIT, "params": params})
    render = Render.objects.get(party=party)
    assert render.prompt.text == AT_LIMIT
    run_render(render.pk)
    render.refresh_from_db()
    assert render.status == Render.Status.DONE


def test_a_walk_to_a_prompt_at_the_limit_is_queued(party, member):
    params = {**SMALL, "mode": "walk", "walk_to": AT_LIMIT, "frames": 2}
    actions.handle(member.pk, {"type": "prompt.submit", "text": AT_LIMIT, "params": params})
    assert Render.objects.get(party=party).params["walk_to"] == AT_LIMIT


# --- The count endpoint -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["a red circle", "zebra", AT_LIMIT, OVER, "שלום עולם", "مرحبا ‮abc‬", "🎨" * 40, "x" * 1000, ""],
)
def test_the_endpoint_counts_with_the_models_tokenizer(offline_tokenizer, text):
    response = count_tokens(text)
    assert response.status_code == 200
    expected = len(offline_tokenizer(text.strip()).input_ids) - 2
    assert response.json() == {"tokens": expected, "limit": 22}


def test_the_endpoint_trims_like_the_prompt_does():
    assert count_tokens("   a red circle \n").json()["tokens"] == 3


@pytest.mark.parametrize(
    "body, code",
    [
        ({"text": "x" * 1001}, "invalid_prompt"),  # refused, never cut
        ({"text": 7}, "invalid_prompt"),
        ({}, "invalid_prompt"),
        ({"text": "a\x00b"}, "invalid_character"),
    ],
)
def test_the_endpoint_refuses_what_it_cannot_count(body, code):
    response = Client().post(
        "/api/models/offline/tokens", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_the_endpoint_knows_its_models(settings):
    def post(name):
        return Client().post(
            f"/api/models/{name}/tokens", json.dumps({"text": "a"}), content_type="application/json"
        )

    assert (post("nope").status_code, post("nope").json()["error"]["code"]) == (
        404,
        "unknown_model",
    )
    assert post("sd-turbo").json()["error"]["code"] == "model_unavailable"
    settings.PARTYHUB_OVERHEAD_PROBE = True
    assert post("overhead-probe").json() == {"tokens": None, "limit": None}
    response = Client().get("/api/models/offline/tokens?text=a")
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_the_endpoint_needs_csrf_like_every_post():
    response = Client(enforce_csrf_checks=True).post(
        "/api/models/offline/tokens", json.dumps({"text": "a"}), content_type="application/json"
    )
    assert response.status_code == 403


# --- Streams ----------------------------------------------------------------------------------


@pytest.fixture
def stream():
    # "{prompt}, {topic}": the topic adds 13 tokens to every submission.
    return Stream.create(slug="moons", title="Moons", topic="moons of giant planets")


@pytest.fixture
def client_of_user():
    user = get_user_model().objects.create_user("ann", password="not-a-secret-1")
    client = Client()
    client.force_login(user)
    return client


def submit(client, text):
    return client.post(
        "/api/streams/moons/prompts", json.dumps({"text": text}), content_type="application/json"
    )


def test_a_stream_counts_the_submission_as_it_renders(stream, client_of_user):
    # 10 tokens alone, 23 once bound to the topic.
    text = "a red circle, a red circle, red red"
    assert tokens.token_count(OFFLINE, text) == 10
    assert tokens.token_count(OFFLINE, stream.bind(text)) == 23
    response = submit(client_of_user, text)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "prompt_too_long"
    assert error["message"].startswith(
        "text, with this stream's topic and style added, is 23 tokens; offline reads at most 22"
    )
    assert not Submission.objects.exists()
    assert not Prompt.objects.filter(party=stream.party).exists()
    # One token less fits, and renders bound.
    response = submit(client_of_user, "a red circle, a red circle, red")
    assert response.status_code == 202
    assert stream.submissions.get().render.prompt.text == (
        "a red circle, a red circle, red, moons of giant planets"
    )


def test_a_stream_that_leaves_no_room_is_refused(db):
    with pytest.raises(ValidationError) as refused:
        Stream.create(
            slug="long",
            title="Long",
            topic="x",
            style="zebra zebra zebra zebra zebra",
            negative=OVER,
        )
    errors = refused.value.message_dict
    assert errors["prompt_template"][0].startswith("The template with the topic and style is 28")
    assert errors["negative"][0].startswith("The negative prompt is 23 tokens")


def test_the_autopilot_composes_only_prompts_that_fit(stream, settings):
    # Each word fits bound (13 + 8 tokens), two together never do; one never fits at all.
    stream.vocabulary = "\n".join(
        ["two small red circles, outlined", "a large blue ring, striped", "zebra " * 5]
    )
    stream.save()
    Submission.objects.create(
        stream=stream,
        user=get_user_model().objects.create_user("bo"),
        text="a green moon at the top",
    )
    for seed in range(40):
        prompt = autopilot.compose(stream, random.Random(seed))
        assert "zebra" not in prompt
        assert tokens.token_count(OFFLINE, stream.bind(prompt)) <= 22, prompt


def test_the_autopilot_renders_nothing_when_nothing_fits(stream, settings, caplog, watching):
    settings.PARTYHUB_AUTOPILOT = True
    Stream.objects.exclude(pk=stream.pk).update(active=False)
    watching(stream)
    stream.vocabulary = "zebra " * 5
    stream.save()
    assert autopilot.compose(stream) is None
    assert autopilot.tick() == 0
    assert not Render.objects.filter(party=stream.party).exists()
    assert "no word of moons fits" in caplog.text
