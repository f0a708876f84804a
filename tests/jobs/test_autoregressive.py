"""The autoregressive preset (Janus-Pro through transformers) end to end, on a tiny random Janus.

The model is built from configs once per run and saved with save_pretrained into a folder named
after the preset, so the app loads it through the same from_pretrained call as the real weights.
Its geometry is 64x64 pixels from 4x4 image tokens (16 steps) instead of Janus-Pro's 384x384
from 24x24, so the tests register the preset with those size and step limits: everything else
(family, class, index file, sampler, guidance, modes) is the real preset's.
"""

import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image as PILImage

from core.errors import ApiError
from generation import autoregressive, presets
from generation.errors import Cancelled
from generation.presets import PRESETS
from generation.random_weights import (
    BOI,
    BOS,
    EOS,
    IMAGE,
    PAD,
    janus_byte_tokenizer,
    janus_processor,
)
from partyhub.models import Image, Member, Render
from tests.conftest import generate_alone

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "janus-pro-1b"
SIDE, TOKENS = 64, 16  # the tiny model's image: 4x4 VQ codes, each decoded to 16x16 pixels
REAL = PRESETS[NAME]
TINY = dataclasses.replace(
    REAL,
    defaults={**REAL.defaults, "width": SIDE, "height": SIDE, "steps": TOKENS},
    limits={
        **REAL.limits,
        "width": (SIDE, SIDE),
        "height": (SIDE, SIDE),
        "steps": (TOKENS, TOKENS),
    },
)


def build_tiny_janus(folder):
    """A random Janus with Janus-Pro's structure at toy sizes, and a byte-level tokenizer."""
    import torch
    from transformers import (
        JanusConfig,
        JanusForConditionalGeneration,
        JanusVisionConfig,
        JanusVQVAEConfig,
        LlamaConfig,
    )

    tokenizer = janus_byte_tokenizer()
    vocab = tokenizer.get_vocab()
    processor = janus_processor(tokenizer, 32, TOKENS)
    torch.manual_seed(0)
    config = JanusConfig(
        text_config=LlamaConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=256,
            bos_token_id=vocab[BOS],
            eos_token_id=vocab[EOS],
            pad_token_id=vocab[PAD],
            # Far above the 0.02 default: logits that peak, so a token's odds depend on the
            # prompt and guidance changes the image, as in a trained model.
            initializer_range=0.5,
        ),
        # image_size / patch_size sets the VQ grid: 32 / 8 = 4 codes a side, 16 tokens.
        vision_config=JanusVisionConfig(
            image_size=32,
            patch_size=8,
            num_image_tokens=TOKENS,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=4,
            projection_dim=32,
            mlp_ratio=2,
        ),
        # Janus-Pro's five VQ levels (16x upsampling), 32 channels (its GroupNorm's minimum).
        vq_config=JanusVQVAEConfig(
            embed_dim=8,
            num_embeddings=64,
            latent_channels=32,
            base_channels=32,
            channel_multiplier=[1, 1, 2, 2, 4],
            num_res_blocks=1,
            projection_dim=32,
            image_token_embed_dim=32,
        ),
        image_token_id=vocab[IMAGE],
    )
    model = JanusForConditionalGeneration(config)
    # What the conversion script writes into Janus-Pro's generation_config.json.
    generation = model.generation_config
    generation._from_model_config = False  # else from_pretrained rebuilds it without the below
    generation.temperature = 1.0
    generation.guidance_scale = 5.0
    generation.pad_token_id = vocab[PAD]
    generation.generation_kwargs = {"boi_token_id": vocab[BOI]}
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def janus_models_dir(tmp_path_factory):
    """A models folder holding only the tiny Janus, as PARTYHUB_MODELS_DIR/janus-pro-1b."""
    models = tmp_path_factory.mktemp("janus-models")
    build_tiny_janus(models / NAME)
    return models


@pytest.fixture(autouse=True)
def tiny_janus(isolated_files, settings, monkeypatch, janus_models_dir):
    settings.PARTYHUB_MODELS_DIR = janus_models_dir
    monkeypatch.setitem(presets.PRESETS, NAME, TINY)


@pytest.fixture
def prompt_master(party, host):
    return Member.objects.get(session_key=host.session_key)


def params(**overrides):
    return {**TINY.defaults, "model": NAME, "mode": "txt2img", "negative": "", "count": 1} | (
        overrides
    )


def pixels(image):
    return np.asarray(image.convert("RGB"))


def stored_png(image_row, settings):
    data = (settings.MEDIA_ROOT / image_row.file.name).read_bytes()
    png = PILImage.open(io.BytesIO(data), formats=["PNG"])
    png.load()
    return png


def test_the_preset_matches_janus_pro_geometry():
    from transformers import JanusConfig

    real = REAL
    # JanusConfig's defaults are Janus-Pro-1B's: its 384 px, 576 tokens are what the preset says.
    side, tokens = autoregressive.geometry(JanusConfig())
    assert (side, tokens) == (384, 576)
    assert (real.defaults["width"], real.defaults["height"], real.defaults["steps"]) == (
        side,
        side,
        tokens,
    )
    assert real.limits["width"] == real.limits["height"] == (side, side)
    assert real.limits["steps"] == (tokens, tokens)
    assert (real.family, real.pipeline, real.index_file) == (
        "autoregressive",
        "JanusForConditionalGeneration",
        "config.json",
    )


def test_the_api_lists_janus_as_autoregressive_and_available(client, settings, tmp_path):
    listed = {p["name"]: p for p in client.get("/api/models").json()}[NAME]
    assert (listed["family"], listed["available"], listed["offline"]) == (
        "autoregressive",
        True,
        False,
    )
    assert listed["modes"] == ["txt2img"]
    assert listed["samplers"] == ["Multinomial"]
    assert listed["defaults"]["guidance"] == 5.0
    assert listed["limits"]["guidance"] == [1.0, 10.0]
    # A folder without config.json (and no hub cache) is not weights.
    settings.PARTYHUB_MODELS_DIR = tmp_path
    (tmp_path / NAME).mkdir()
    (tmp_path / NAME / "model_index.json").write_text("{}")
    assert REAL.is_available() is False


def test_a_prompt_renders_stored_pngs_one_seed_per_image(
    party, prompt_master, broadcasts, settings
):
    sent, _ = broadcasts
    _, render = party.submit_prompt(
        prompt_master, "a lighthouse at night", params={"model": NAME, "count": 2, "seed": 41}
    )
    assert render.params["sampler"] == "Multinomial"
    from partyhub.jobs.runner import run_render

    run_render(render.pk)
    render.refresh_from_db()
    assert render.status == Render.Status.DONE, render.error_message
    rows = list(Image.objects.filter(render=render).order_by("index"))
    assert [(row.seed, row.width, row.height) for row in rows] == [
        (41, SIDE, SIDE),
        (42, SIDE, SIDE),
    ]
    stored = [stored_png(row, settings) for row in rows]
    for png, seed in zip(stored, (41, 42), strict=True):
        assert png.size == (SIDE, SIDE)
        parameters = png.text["parameters"]
        assert parameters.startswith("a lighthouse at night\n")
        for field in (f"Seed: {seed}", f"Model: {NAME}", "Sampler: Multinomial", "Steps: 16"):
            assert field in parameters
        assert json.loads(png.text["partyhub"])["render"] == render.pk
    # Progress counts image tokens over the whole render: 2 images x 16, the last one decoding.
    progress = [m for m in sent if m["type"] == "render.progress"]
    assert (progress[-1]["step"], progress[-1]["steps"], progress[-1]["phase"]) == (
        2 * TOKENS,
        2 * TOKENS,
        "decoding",
    )
    # Each image is the image of its seed alone, and the seeds make different images.
    for png, seed in zip(stored, (41, 42), strict=True):
        (alone,), _ = generate_alone(
            TINY,
            "a lighthouse at night",
            render.params | {"seed": seed, "count": 1},
            on_step=lambda *args: None,
            should_stop=lambda: False,
        )
        assert np.array_equal(pixels(png), pixels(alone))
    assert not np.array_equal(pixels(stored[0]), pixels(stored[1]))


def test_progress_is_reported_for_every_token():
    steps = []
    images, seeds = generate_alone(
        TINY,
        "a red chair",
        params(seed=7, count=2),
        on_step=lambda done, total: steps.append((done, total)),
        should_stop=lambda: False,
    )
    assert seeds == [7, 8]
    assert [image.size for image in images] == [(SIDE, SIDE)] * 2
    assert steps == [(done, 2 * TOKENS) for done in range(1, 2 * TOKENS + 1)]


def test_should_stop_ends_sampling_at_the_next_token():
    steps = []
    with pytest.raises(Cancelled):
        generate_alone(
            TINY,
            "a red chair",
            params(seed=7, count=2),
            on_step=lambda done, total: steps.append(done),
            should_stop=lambda: len(steps) >= 3,
        )
    assert steps == [1, 2, 3]


def test_a_render_cancelled_while_sampling_ends_cancelled(party, prompt_master, broadcasts):
    sent, hooks = broadcasts
    _, render = party.submit_prompt(prompt_master, "a slow boat", params={"model": NAME})

    def cancel_once_running(message):
        if message["type"] == "render.progress" and message["step"] == 0:
            render.cancel(prompt_master)  # the render is running: it stops at its next token

    hooks.append(cancel_once_running)
    from partyhub.jobs.runner import run_render

    run_render(render.pk)
    render.refresh_from_db()
    assert (render.status, render.cancel_requested_by) == (Render.Status.CANCELLED, prompt_master)
    assert not Image.objects.filter(render=render).exists()
    assert all(m["step"] < TOKENS for m in sent if m["type"] == "render.progress")


def test_guidance_one_samples_the_prompt_alone():
    # transformers' Janus adds its guidance processor only above 1 yet always doubles the batch.
    def render(guidance):
        (image,), _ = generate_alone(
            TINY,
            "a red chair",
            params(seed=3, guidance=guidance),
            on_step=lambda *args: None,
            should_stop=lambda: False,
        )
        return pixels(image)

    unguided = render(1.0)
    assert unguided.shape == (SIDE, SIDE, 3)
    assert not np.array_equal(unguided, render(5.0))


def test_weights_that_do_not_match_the_preset_are_refused():
    real = REAL.defaults  # 384 px, 576 tokens: not what the tiny weights draw
    with pytest.raises(ValueError, match="draws 64x64 images of 16 tokens"):
        generate_alone(
            TINY,
            "a red chair",
            params(**real, seed=1),
            on_step=lambda *args: None,
            should_stop=lambda: False,
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"negative": "blurry"}, "takes no negative prompt"),
        ({"sampler": "Euler a"}, "sampler must be one of ['Multinomial']"),
        ({"steps": 20}, "steps must be between 16 and 16"),
        ({"mode": "img2img", "init_upload": 1}, "mode 'img2img' is not available"),
    ],
)
def test_requests_janus_cannot_honour_are_refused(party, prompt_master, overrides, message):
    with pytest.raises(ApiError) as refused:
        party.submit_prompt(prompt_master, "a cat", params={"model": NAME, **overrides})
    assert message in refused.value.message


def test_diffusion_presets_do_not_take_the_token_sampler(party, prompt_master):
    with pytest.raises(ApiError) as refused:
        party.submit_prompt(prompt_master, "a cat", params={"sampler": "Multinomial"})
    assert refused.value.code == "invalid_param"
