"""Live previews: TAESD, or the offline model's latent colours, turn a running render's latents
into small WebPs for the room."""

import base64
import io
import json

import pytest
from PIL import Image as PILImage

from generation import previews, taesd
from partyhub.jobs.runner import run_render
from partyhub.models import Member

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def progress_frames(monkeypatch):
    frames = []
    monkeypatch.setattr(
        "partyhub.jobs.watch.group_send",
        lambda group, message: (
            frames.append(json.loads(message["frame"]))
            if message["type"] == "render.progress"
            else None
        ),
    )
    return frames


def render(party, host, **params):
    author = Member.objects.get(session_key=host.session_key)
    _, job = party.submit_prompt(author, "a planet", params={"width": 64, "height": 64, **params})
    run_render(job.pk)
    return job


def test_progress_carries_a_webp_preview_of_the_forming_image(
    party, host, progress_frames, settings, monkeypatch
):
    decoded = []
    real = previews.data_urls
    monkeypatch.setattr(previews, "data_urls", lambda *args: decoded.append(1) or real(*args))
    render(party, host, steps=4)
    started, *steps = progress_frames
    assert (started["step"], started["phase"], "preview" in started) == (0, "running", False)
    assert steps and steps[-1]["step"] == steps[-1]["steps"] == 4
    assert steps[-1]["phase"] == "decoding"
    assert "preview" not in steps[-1]  # the images themselves come next
    with_preview = [frame for frame in steps if "preview" in frame]
    assert with_preview and len(decoded) == len(with_preview)  # decoded only when sent
    header, data = with_preview[-1]["preview"].split(",", 1)
    assert header == "data:image/webp;base64"
    image = PILImage.open(io.BytesIO(base64.b64decode(data)))
    assert image.format == "WEBP"
    assert max(image.size) <= previews.PREVIEW_SIDE
    assert image.size == (64, 64)  # the render's size, when it is smaller than the cap


def test_the_offline_model_previews_through_its_latent_colours():
    """The decoder takes the sampler's scaled latents, as TAESD does, and maps each latent pixel
    to a colour: a drawn picture, encoded and scaled the way the pipeline's latents are, comes
    back at its own size with its colours in place, far closer than one mean colour."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from generation.pipelines import get_pipeline
    from generation.presets import get_preset
    from offline import diffusion, world

    preset = get_preset("offline")
    decoder = previews.get_decoder(preset)
    vae = get_pipeline(preset).vae
    assert isinstance(decoder, previews.LatentColours)
    rng = np.random.default_rng(3)
    picture = diffusion.draw_batch([world.sample_scene(rng) for _ in range(8)])
    with torch.no_grad():
        latents = vae.encode(diffusion.to_pixels(picture)).latent_dist.mode()
        back = decoder.decode(latents * vae.config.scaling_factor).sample.clamp(-1, 1)
    assert back.shape == diffusion.to_pixels(picture).shape

    def blurred(pixels):  # colours in place, at the latents' own resolution
        return F.adaptive_avg_pool2d(pixels, latents.shape[-2:]) * 127.5

    error = (blurred(back) - blurred(diffusion.to_pixels(picture))).abs().mean()
    mean_colour = (
        (
            blurred(diffusion.to_pixels(picture)).mean((0, 2, 3), keepdim=True)
            - blurred(diffusion.to_pixels(picture))
        )
        .abs()
        .mean()
    )
    assert error < 40 and error < mean_colour / 2  # of 255 levels: 30.8 and 76.1 when fit


def test_previews_can_be_switched_off(party, host, progress_frames, settings):
    settings.PARTYHUB_PREVIEWS = False
    render(party, host, steps=2)
    assert progress_frames and not any("preview" in frame for frame in progress_frames)


def test_a_preset_without_a_decoder_renders_without_previews(settings, tmp_path):
    from dataclasses import replace

    from generation.presets import get_preset

    settings.PARTYHUB_MODELS_DIR = tmp_path  # no taesd folder, nothing in the hub cache
    preset = replace(get_preset("sd-turbo"), preview_decoder=("taesd", "nobody/no-such-taesd"))
    taesd._decoders.pop(preset.preview_decoder, None)
    assert previews.get_decoder(preset) is None
