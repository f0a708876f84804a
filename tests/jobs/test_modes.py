"""img2img, inpaint and variation: parameter checks at submit time and real renders on the tiny
offline pipeline."""

import io
import json

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image as PILImage
from PIL import ImageDraw

from core.errors import ApiError
from partyhub.jobs.runner import run_render
from partyhub.jobs.store import WALK_FRAME_MS
from partyhub.models import Image, Member, Party, Render, Upload
from tests.conftest import stored_pixels

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"width": 64, "height": 64, "steps": 4, "sampler": "Euler"}


@pytest.fixture
def author(party, host):
    return Member.objects.get(session_key=host.session_key)


def render_now(party, author, text="an empty chair", **params):
    _, render = party.submit_prompt(author, text, params=params)
    run_render(render.pk)
    render.refresh_from_db()
    assert render.status == Render.Status.DONE, render.error_message
    return render


def parameters_text(image_row):
    with default_storage.open(image_row.file.name) as stored:
        return PILImage.open(stored).text["parameters"]


def make_upload(party, author, image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    name = default_storage.save(
        f"parties/{party.code}/uploads/test.png", ContentFile(buffer.getvalue())
    )
    return Upload.objects.create(
        party=party,
        member=author,
        file=name,
        source_format="PNG",
        width=image.width,
        height=image.height,
    )


@pytest.fixture
def first_image(party, author):
    return render_now(party, author, **SMALL, seed=11).images.get()


def refused(party, author, **params):
    with pytest.raises(ApiError) as error:
        party.submit_prompt(author, "x", params=params)
    return error.value.code


def test_source_params_are_checked_before_anything_is_queued(party, author, first_image):
    image = first_image.pk
    other, stranger = Party.start(topic="cats", session_key="z" * 32, host_name="Zed")
    foreign = render_now(other, stranger, **SMALL).images.get().pk
    mask_64 = make_upload(party, author, PILImage.new("L", (64, 64))).pk
    mask_32 = make_upload(party, author, PILImage.new("L", (32, 32))).pk
    prompts = party.prompts.count()

    assert refused(party, author, mode="img2img") == "invalid_param"  # no source
    upload = make_upload(party, author, PILImage.new("RGB", (64, 64))).pk
    assert refused(party, author, mode="img2img", init_image=image, init_upload=upload) == (
        "invalid_param"
    )
    assert refused(party, author, mode="img2img", init_image=foreign) == "unknown_image"
    assert refused(party, author, mode="img2img", init_upload=10**6) == "unknown_upload"
    assert refused(party, author, mode="img2img", init_image="1") == "invalid_param"
    for strength in (0, 1.5, -0.1, "0.5", True):
        assert refused(party, author, mode="img2img", init_image=image, strength=strength) == (
            "invalid_param"
        )
    # diffusers would run int(4 x 0.2) = 0 steps.
    assert refused(party, author, mode="img2img", init_image=image, steps=4, strength=0.2) == (
        "invalid_param"
    )
    assert refused(party, author, mode="img2img", init_image=image, mask=mask_64) == (
        "invalid_param"
    )
    assert refused(party, author, mode="inpaint", init_image=image) == "invalid_param"  # no mask
    assert refused(party, author, mode="inpaint", init_image=image, mask=mask_32) == (
        "mask_size_mismatch"
    )
    assert refused(party, author, mode="variation", init_upload=upload) == "invalid_param"
    assert refused(party, author, mode="variation", init_image=image, width=128) == (
        "invalid_param"
    )
    assert refused(party, author, strength=0.5) == "invalid_param"  # txt2img takes no strength
    assert party.prompts.count() == prompts


def test_a_source_gives_the_render_its_size_and_the_mode_its_strength(party, author):
    upload = make_upload(party, author, PILImage.new("RGB", (96, 72), "red"))
    _, render = party.submit_prompt(
        author, "x", params={"mode": "img2img", "init_upload": upload.pk}
    )
    assert (render.params["width"], render.params["height"]) == (96, 72)
    assert render.params["strength"] == 0.6


def test_img2img_renders_from_the_source_image(party, author, first_image):
    render = render_now(
        party,
        author,
        mode="img2img",
        init_image=first_image.pk,
        strength=0.5,
        seed=3,
        steps=4,
        sampler="Euler",
    )
    image = render.images.get()
    assert (image.width, image.height) == (64, 64)
    assert "Denoising strength: 0.5" in parameters_text(image)
    # Another source with the same seed and settings gives another picture.
    upload = make_upload(party, author, PILImage.new("RGB", (64, 64), "white"))
    other = render_now(
        party,
        author,
        mode="img2img",
        init_upload=upload.pk,
        strength=0.5,
        seed=3,
        steps=4,
        sampler="Euler",
    ).images.get()
    assert np.abs(stored_pixels(image) - stored_pixels(other)).mean() > 1.0


def test_img2img_reports_the_steps_it_really_runs(party, author, first_image, monkeypatch):
    frames = []
    monkeypatch.setattr(
        "partyhub.jobs.watch.group_send", lambda group, message: frames.append(message)
    )
    render_now(party, author, mode="img2img", init_image=first_image.pk, strength=0.5, steps=4)
    progress = [json.loads(f["frame"]) for f in frames if f["type"] == "render.progress"]
    assert progress[-1]["step"] == progress[-1]["steps"] == 2  # int(4 x 0.5)


def test_inpaint_renders_with_a_mask(party, author, first_image):
    mask = PILImage.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    upload = make_upload(party, author, mask)
    render = render_now(
        party,
        author,
        mode="inpaint",
        init_image=first_image.pk,
        mask=upload.pk,
        seed=5,
        steps=4,
    )
    image = render.images.get()
    assert (image.width, image.height) == (64, 64)
    assert "Denoising strength: 1.0" in parameters_text(image)


def test_a_repaint_changes_the_painted_pixels_and_keeps_every_other_one(party, author):
    # As the room paints: round dabs of the brush (1/16 of the picture) in a stroke across the
    # circle, white on black. Outside the stroke every pixel must be the source's own, not the
    # autoencoder's copy of it; inside, the model draws what the prompt asks.
    params = {"width": 128, "height": 128, "steps": 12}
    source = render_now(party, author, "a red circle on a white background", **params, seed=11)
    source = source.images.get()
    mask = PILImage.new("L", (128, 128), 0)
    for x in range(16, 64, 4):
        ImageDraw.Draw(mask).ellipse((x - 8, 48, x + 8, 64), fill=255)
    upload = make_upload(party, author, mask)
    repaint = render_now(
        party,
        author,
        "a blue star on a white background",
        **params,
        mode="inpaint",
        init_image=source.pk,
        mask=upload.pk,
        seed=5,
    ).images.get()
    change = np.abs(stored_pixels(repaint) - stored_pixels(source)).max(axis=2)
    inside = np.asarray(mask) >= 128
    assert change[~inside].max() == 0
    assert change[inside].mean() > 20, change[inside].mean()


def test_a_variation_runs_from_the_varied_image_to_its_own_seeds_picture(party, author):
    # The ends of the blend, which hold for any model: at strength ~0 the varied image, at 1 the
    # picture of the variation's own seed. Seeds 0 and 1 give "a red circle" two different
    # pictures (other pairs can give the same: seeds 11 and 99 do, with the weights of
    # 2026-12-06), so the blend has somewhere to go.
    text = "a red circle"
    first = render_now(party, author, text, **SMALL, seed=0).images.get()
    other = render_now(party, author, text, **SMALL, seed=1).images.get()
    params = {**SMALL, "mode": "variation", "init_image": first.pk, "seed": 1}
    faint = render_now(party, author, text, **params, strength=1e-6).images.get()
    full = render_now(party, author, text, **params, strength=1.0).images.get()
    assert np.abs(stored_pixels(faint) - stored_pixels(first)).max() <= 2  # rounding to 8 bits
    assert np.abs(stored_pixels(full) - stored_pixels(other)).max() <= 2
    changed = np.abs(stored_pixels(full) - stored_pixels(first)).max(-1) > 32
    assert changed.mean() > 0.02
    text = parameters_text(full)
    assert "Seed: 0," in text  # A1111: the varied image's seed ...
    assert "Variation seed: 1, Variation seed strength: 1" in text  # ... and the variation's
    assert full.seed == 1


def test_count_varies_each_image_with_its_own_seed(party, author, first_image):
    params = {**SMALL, "mode": "variation", "init_image": first_image.pk, "strength": 0.5}
    render = render_now(party, author, **params, seed=40, count=2)
    assert [i.seed for i in render.images.order_by("index")] == [40, 41]
    alone = render_now(party, author, **params, seed=41).images.get()
    assert np.abs(stored_pixels(render.images.get(index=1)) - stored_pixels(alone)).max() <= 2


def test_every_diffusion_preset_offers_the_modes():
    from generation.presets import all_presets

    for preset in all_presets().values():
        if preset.family == "diffusion":
            assert {"txt2img", "img2img", "inpaint", "variation"} <= set(preset.modes)


def test_refusal_leaves_no_render(party, author):
    with pytest.raises(ApiError):
        party.submit_prompt(author, "x", params={"mode": "img2img"})
    assert not Render.objects.exists()
    assert not Image.objects.exists()


def test_walk_params_are_checked(party, author):
    assert refused(party, author, mode="walk") == "invalid_param"  # nowhere to go
    assert refused(party, author, mode="walk", walk_seed=5, seed=5) == "invalid_param"
    assert refused(party, author, mode="walk", walk_to="x", frames=1) == "invalid_param"
    assert refused(party, author, mode="walk", walk_to="x", frames=33) == "invalid_param"
    assert refused(party, author, mode="walk", walk_to="x", count=2) == "invalid_param"
    assert refused(party, author, mode="walk", walk_to="   ") == "invalid_prompt"
    assert refused(party, author, mode="walk", walk_seed=-1) == "invalid_param"
    assert refused(party, author, walk_to="x") == "invalid_param"  # not for txt2img
    _, render = party.submit_prompt(author, "x", params={"mode": "walk", "walk_to": " y "})
    assert (render.params["walk_to"], render.params["frames"]) == ("y", 8)
    assert render.params["walk_seed"] == render.params["seed"]


def test_a_walk_starts_at_the_plain_render_and_ends_at_its_goal(party, author):
    start = render_now(party, author, "a red planet", **SMALL, seed=3).images.get()
    goal = render_now(party, author, "a blue moon", **SMALL, seed=8).images.get()
    walk = render_now(
        party,
        author,
        "a red planet",
        **SMALL,
        seed=3,
        mode="walk",
        walk_to="a blue moon",
        walk_seed=8,
        frames=3,
    )
    frames = list(walk.images.order_by("index"))
    assert len(frames) == 3
    assert np.abs(stored_pixels(frames[0]) - stored_pixels(start)).max() <= 2
    assert np.abs(stored_pixels(frames[2]) - stored_pixels(goal)).max() <= 2
    middle = stored_pixels(frames[1])
    assert (
        np.abs(middle - stored_pixels(start)).mean() > 1
        and np.abs(middle - stored_pixels(goal)).mean() > 1
    )
    assert "Walk to: a blue moon, Walk to seed: 8, Walk frames: 3" in parameters_text(frames[1])


def test_a_walk_with_an_ancestral_sampler_starts_at_the_plain_render_too(party, author):
    """Euler a draws fresh noise at every step from the image's generator: the walk's first
    frame draws the same as the plain render does, not only starts from the same noise, so
    "Use" in walk mode starts the walk at the very image picked. (Its frames all take the
    start's step noise, so it ends near the goal's plain render, not at it: docs/protocol.md.)"""
    small = {**SMALL, "sampler": "Euler a", "seed": 3}
    start = render_now(party, author, "a red planet", **small).images.get()
    walk = render_now(
        party, author, "a red planet", **small, mode="walk", walk_to="a blue moon", frames=2
    )
    first = walk.images.order_by("index").first()
    assert np.abs(stored_pixels(first) - stored_pixels(start)).max() <= 2


def test_a_walk_is_also_an_animated_webp_in_the_event_and_the_export(party, author, host):
    import zipfile

    from partyhub.export import build_zip
    from partyhub.models import Event

    walk = render_now(party, author, "a red planet", **SMALL, mode="walk", walk_seed=7, frames=4)
    with default_storage.open(walk.animation.name) as stored:
        animation = PILImage.open(stored)
        assert (animation.format, animation.size) == ("WEBP", (64, 64))
        # There and back: 4 frames, then 2 back, WALK_FRAME_MS each. libwebp merges a frame
        # identical to the one before into it (adding up their durations), so the total is
        # what is certain, not the count (in one full run of the suite two frames came out equal).
        durations = []
        for index in range(animation.n_frames):
            animation.seek(index)
            animation.load()  # the frame's duration is read with its pixels
            durations.append(animation.info["duration"])
        assert sum(durations) == 6 * WALK_FRAME_MS and animation.n_frames >= 2
    done = Event.objects.filter(party=party, type="render.done").last()
    assert done.payload["animation"] == walk.animation.url
    with zipfile.ZipFile(build_zip(party)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        path = next(r["animation"] for r in manifest["renders"] if r["id"] == walk.pk)
        assert path == f"images/r{walk.pk}-walk.webp" and path in archive.namelist()
