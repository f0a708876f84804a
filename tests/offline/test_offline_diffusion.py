"""The bundled offline diffusion model (offline/diffusion.py): loaded the way any Stable Diffusion
checkpoint is, it draws what it is asked, as the judge reads it."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from generation.pipelines import get_pipeline
from generation.presets import get_preset
from offline import diffusion as D
from offline import evaluate, train_diffusion, train_vae, world
from offline import judge as J


@pytest.fixture(scope="module")
def pipe():
    return evaluate.load_diffusion(D.WEIGHTS)


@pytest.fixture(scope="module")
def judge():
    return J.load()


def read(judge, images):
    """What the judge sees in 128×128 pictures: {head: class name} per picture."""
    pred = judge.predict(D.to_judge(np.asarray(images)))
    heads = ("colour", "shape", "position")
    return [
        {head: world.label_names(head)[int(pred[head][n])] for head in heads}
        for n in range(len(images))
    ]


def scene(text, seed=1):
    """The world's own drawing of a full caption."""
    parsed = world.parse(text)
    return world.Scene(
        shapes=parsed.shapes,
        background=parsed.background,
        style=parsed.style or "filled",
        relation=parsed.relation,
        seed=seed,
    )


def test_the_app_loads_the_bundled_folder_with_from_pretrained():
    preset = get_preset("offline")
    assert preset.weights_source() == D.WEIGHTS
    loaded = get_pipeline(preset)
    assert type(loaded).__name__ == "StableDiffusionPipeline"
    assert loaded.vae.config.scaling_factor == pytest.approx(
        json.loads((D.WEIGHTS / "vae" / "config.json").read_text())["scaling_factor"]
    )


def test_every_word_of_the_grammar_is_one_token_and_any_text_encodes(pipe):
    tokenizer = pipe.tokenizer
    assert all(len(tokenizer.tokenize(word)) == 1 for word in world.vocabulary())
    ids = tokenizer("Zebra crossing, ümlaut!")["input_ids"]
    assert tokenizer.unk_token_id not in ids[1:-1]


def test_a_prompt_for_a_red_circle_draws_a_red_circle(pipe, judge):
    prompt = "a large red circle in the centre on a blue background"
    images = evaluate.render_diffusion(pipe, [prompt] * 4, seed=0)
    seen = [tuple(r.values()) for r in read(judge, images)]
    assert seen == [("red", "circle", "centre")] * 4


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("a purple circle at the top", ("purple", "circle", "top")),
        ("a large green heart in the centre on a yellow background", ("green", "heart", "centre")),
    ],
)
def test_colour_and_shape_pairs_never_seen_in_training_are_drawn(pipe, judge, prompt, expected):
    # Both pairs are in world.HELDOUT: no training picture had a purple circle or a green heart.
    assert (expected[0], expected[1]) in world.HELDOUT
    images = evaluate.render_diffusion(pipe, [prompt] * 4, seed=0)
    assert [tuple(r.values()) for r in read(judge, images)] == [expected] * 4


def test_the_judges_figures_on_held_out_captions_are_the_recorded_ones(pipe):
    """What docs/models.md and training.json say the shipped model scores, it scores: the 200
    held-out captions of ``python -m offline.evaluate diffusion``, rendered again here."""
    recorded = json.loads((D.WEIGHTS / "training.json").read_text())["diffusion"]["heldout"]
    scores = evaluate.diffusion_scores(pipe, evaluate.heldout_captions(200))
    assert set(recorded) <= set(scores)
    for name, figure in recorded.items():
        assert scores[name] == pytest.approx(figure, abs=0.03), name


def round_trip(pipe, pictures):
    """The pictures through the autoencoder and back: the most any redraw can keep."""
    with torch.no_grad():
        latents = pipe.vae.encode(D.to_pixels(pictures)).latent_dist.mode()
        return D.to_images(pipe.vae.decode(latents).sample)


def test_img2img_at_strength_0_3_keeps_the_shape_and_its_place(pipe, judge):
    from diffusers import AutoPipelineForImage2Image

    img2img = AutoPipelineForImage2Image.from_pipe(pipe)
    rng = np.random.default_rng(77)
    scenes = [s for s in (world.sample_scene(rng, "heldout") for _ in range(60)) if s.count == 1]
    sources = D.draw_batch(scenes[:24])
    result = img2img(
        [world.caption(s) for s in scenes[:24]],
        image=[Image.fromarray(a) for a in sources],
        strength=0.3,
        num_inference_steps=20,
        generator=[torch.Generator().manual_seed(n) for n in range(24)],
        output_type="np",
    ).images
    before = read(judge, sources)
    after = read(judge, (result * 255).round().astype(np.uint8))
    ceiling = read(judge, round_trip(pipe, sources))
    assert [a["position"] for a in after] == [b["position"] for b in before]
    kept = np.mean([a["shape"] == b["shape"] for a, b in zip(after, before, strict=True)])
    possible = np.mean([c["shape"] == b["shape"] for c, b in zip(ceiling, before, strict=True)])
    # Within two pictures of the autoencoder's own round trip. Measured with the shipped weights:
    # 22 of 24 against 24; with the decoder before (2026-12-06) 21 against 21, and the first
    # model, after 8,000 steps, 19 against 21.
    assert kept >= possible - 2 / 24, (kept, possible)


def test_inpainting_changes_pixels_only_inside_the_mask(pipe):
    from diffusers import AutoPipelineForInpainting

    inpaint = AutoPipelineForInpainting.from_pipe(pipe)
    source = D.draw_batch([scene("a large green square on the left on a white background")])
    mask = np.zeros((D.SIZE, D.SIZE), np.uint8)
    mask[:, 64:] = 255  # the right half: put something there
    result = inpaint(
        "a large green square left of a large red circle on a white background",
        image=Image.fromarray(source[0]),
        mask_image=Image.fromarray(mask),
        strength=1.0,
        num_inference_steps=20,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images[0]
    out = (result * 255).round().astype(np.int16)
    diff = np.abs(out - source[0]).mean(axis=2)
    floor = np.abs(round_trip(pipe, source)[0].astype(np.int16) - source[0]).mean(axis=2)
    # Outside the mask (less a margin of one latent cell, 8 px, where the decoder blends both
    # sides) the latents are the source's, so the picture is what the autoencoder makes of the
    # source, all but what the decoder's attention, which sees the whole picture, carries over
    # from the new half: 1.6 of 255 with the shipped decoder (0.2 with the one before). The app
    # pastes the source back outside the mask besides (generation/modes.py).
    assert diff[:, :56].mean() < floor[:, :56].mean() + 2, (diff[:, :56].mean(), floor.mean())
    assert diff[:, 72:].mean() > 20  # and something new was drawn inside


def test_a_few_training_steps_give_a_folder_stable_diffusion_loads(tmp_path):
    common = ["--out", str(tmp_path), "--threads", "1", "--batch-size", "4"]
    train_vae.main(["--steps", "2", "--eval-size", "8", *common])
    binding = ["--grounding", "0.05", "--roles", "0.05"]  # the losses the shipped runs added
    train_diffusion.main(
        ["--steps", "2", "--pool", "8", "--eval", "2", "--save-every", "0", *binding, *common]
    )
    loaded = evaluate.load_diffusion(tmp_path)
    assert list(loaded.unet.config.block_out_channels) == D.UNET["block_out_channels"]
    images = evaluate.render_diffusion(loaded, ["a red circle"], steps=2)
    assert images.shape == (1, D.SIZE, D.SIZE, 3)
    record = json.loads((tmp_path / "training.json").read_text())
    assert record["vae"]["steps"] == record["diffusion"]["steps"] == 2
    assert record["diffusion"]["grounding"] == record["diffusion"]["roles"] == 0.05
    assert record["diffusion"]["device"] == "cpu"


def test_training_the_decoder_alone_keeps_the_latents_the_unet_learnt(tmp_path):
    from diffusers import AutoencoderKL
    from safetensors import safe_open

    common = ["--out", str(tmp_path), "--threads", "1", "--batch-size", "2", "--eval-size", "4"]
    train_vae.main(["--steps", "2", *common])
    # Kept in float16, as the pipeline keeps all its weights.
    with safe_open(tmp_path / "vae" / "diffusion_pytorch_model.safetensors", "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    before = AutoencoderKL.from_pretrained(tmp_path / "vae", local_files_only=True)
    train_vae.main(["--steps", "3", "--lr", "1e-2", "--resume", "--decoder-only", *common])
    after = AutoencoderKL.from_pretrained(tmp_path / "vae", local_files_only=True)
    x = D.to_pixels(D.draw_batch(train_vae.scenes(np.random.default_rng(1), 2, "train")))
    with torch.no_grad():
        assert torch.equal(before.encode(x).latent_dist.mean, after.encode(x).latent_dist.mean)
        z = before.encode(x).latent_dist.mode()
        assert not torch.allclose(before.decode(z).sample, after.decode(z).sample)
    assert after.config.scaling_factor == before.config.scaling_factor
    record = json.loads((tmp_path / "training.json").read_text())["vae"]
    assert record["decoder_only"] and record["resumed_from"]["steps"] == 2
    with pytest.raises(SystemExit):
        train_vae.main(["--steps", "1", "--decoder-only", *common])  # nothing to train on from
