"""Prompt weights in AUTOMATIC1111's syntax (issue 22, item 3), in the engine alone: the strict
parse, the param that opts in, which models take it, the token count without the syntax, and
the effect on the pixels of the bundled offline model, alone and in a batch. No database."""

import numpy as np
import pytest

from generation import modes, pipelines, tokens, weights
from generation.errors import Refused
from generation.modes import Slot
from generation.params import check_token_limits, check_weights_param, resolve_params
from generation.presets import PRESETS, Preset, get_preset

OFFLINE = get_preset("offline")
# 128x128 and 10 steps: the size the offline model was trained at, where its colours show; a
# batch of four renders in well under a second on a CPU.
PICTURE = {
    "mode": "txt2img",
    "model": "offline",
    "width": 128,
    "height": 128,
    "steps": 10,
    "guidance": 5.0,
    "sampler": "Euler",
    "negative": "",
    "count": 1,
    "seed": 3,
}
RED_CIRCLE = "a red circle on a white background"


def fragments(text):
    return [(piece, round(weight, 4)) for piece, weight in weights.parse(text).fragments]


# --- The syntax -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("normal text", [("normal text", 1.0)]),
        # A1111's own examples (modules/prompt_parser.py's doctests)
        ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
        (r"\(literal\]", [("(literal]", 1.0)]),
        ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
        (
            "a ((house:1.3)) [on] a (hill:0.5)",
            [("a ", 1.0), ("house", 1.43), (" ", 1.0), ("on", 0.9091), (" a ", 1.0), ("hill", 0.5)],
        ),
        ("((sky))", [("sky", 1.21)]),
        ("(red: 1.5 ) x", [("red", 1.5), (" x", 1.0)]),
        ("(red:0) x", [("red", 0.0), (" x", 1.0)]),
        ("(red:2) x", [("red", 2.0), (" x", 1.0)]),
        # Up then down again is exactly 1 (exact fractions), and a weight of 1 is no weight.
        ("[(red)] circle", [("red circle", 1.0)]),
        ("(red:1.0) circle", [("red circle", 1.0)]),
        # A colon or a bar outside brackets, and a lone backslash, are text.
        (r"style: oil | a \ b", [(r"style: oil | a \ b", 1.0)]),
    ],
)
def test_it_reads_a1111s_syntax(text, expected):
    assert fragments(text) == expected


def test_the_encoder_reads_the_text_without_its_syntax():
    parsed = weights.parse(r"a (red:1.5) [circle], \(big\)")
    assert parsed.text == "a red circle, (big)"
    assert [(piece, round(weight, 4)) for piece, weight in parsed.weighted] == [
        ("red", 1.5),
        ("circle", 0.9091),
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("(red:abc) circle", "the weight after the ':' at character 5 must be a number"),
        ("(red:1.2.3)", "not '1.2.3'"),
        ("(red:1.2", "not '1.2'"),
        ("(red circle", "the '(' at character 1 is never closed"),
        ("red) circle", "the ')' at character 4 closes nothing"),
        ("[red circle", "the '[' at character 1 is never closed"),
        ("(red] circle", "the '(' at character 1 is closed by the ']' at character 5"),
        ("(red:2.5) circle", "the weight 2.5 in '(red:2.5)' is outside 0 to 2"),
        ("(red:-0.5) circle", "the weight -0.5 in '(red:-0.5)' is outside 0 to 2"),
        ("((red:1.9)) circle", "'red' is weighed 2.09 by its nested groups, outside 0 to 2"),
        ("(((((((((red))))))))) x", "'red' is weighed 2.36 by its nested groups"),
        ("() circle", "'()' weighs no words"),
        ("(:1.2) circle", "'(:1.2)' weighs no words"),
        ("[red:blue:5] circle", "AUTOMATIC1111's prompt editing ([from:to:when])"),
        ("[red|blue] circle", "alternation ([a|b])"),
        ("a red circle AND a blue square", "AND is AUTOMATIC1111's syntax for composing prompts"),
        ("a red circle BREAK a blue square", "BREAK is AUTOMATIC1111's syntax"),
    ],
)
def test_malformed_syntax_is_refused_never_guessed(text, says):
    with pytest.raises(Refused) as refused:
        weights.parse(text, "negative")
    assert refused.value.code == "invalid_prompt"
    assert refused.value.message.startswith("negative, read with prompt weights: ")
    assert says in refused.value.message


# --- Opting in --------------------------------------------------------------------------------


def test_weights_are_off_unless_asked_for():
    assert resolve_params({"model": "offline"})["weights"] is False
    assert resolve_params({"model": "offline", "weights": True})["weights"] is True


@pytest.mark.parametrize("value", [1, 0, "true", None, [True]])
def test_weights_is_a_boolean(value):
    with pytest.raises(Refused) as refused:
        resolve_params({"model": "offline", "weights": value})
    assert refused.value.code == "invalid_param"
    assert f"weights must be true or false, not {value!r}" in refused.value.message


def test_which_models_take_weights():
    """The models whose text encoder gives one embedding a token, that PartyHub hands the
    pipeline as embeddings: the offline model (checked for real below), SD-Turbo and SD 1.5
    (CLIP, the path compel was written for)."""
    assert [name for name, preset in PRESETS.items() if preset.prompt_weights] == [
        "offline",
        "sd-turbo",
        "sd15",
    ]
    assert OFFLINE.as_dict()["prompt_weights"] is True


def test_an_autoregressive_model_refuses_weights_naming_itself(monkeypatch):
    # offline-ar's transformer is not trained yet, so it is not offered: here it is.
    monkeypatch.setattr(Preset, "is_available", lambda preset: True)
    with pytest.raises(Refused) as refused:
        resolve_params({"model": "offline-ar", "weights": True})
    assert refused.value.code == "invalid_param"
    assert refused.value.message.startswith("offline-ar takes no prompt weights (it reads")
    assert refused.value.message.endswith("offline, sd-turbo, sd15 do.")
    assert resolve_params({"model": "offline-ar", "weights": False})["weights"] is False


@pytest.mark.parametrize("name", ["sdxl-turbo", "janus-pro-1b"])
def test_sdxl_and_janus_refuse_weights(name):
    """Checked on the preset, as resolve_params does once the model is available (neither's
    weights are on this machine, and that is refused first)."""
    with pytest.raises(Refused) as refused:
        check_weights_param(get_preset(name), True)
    assert refused.value.code == "invalid_param"
    assert refused.value.message.startswith(f"{name} takes no prompt weights")


def test_every_text_of_a_weighted_render_is_checked_naming_its_field():
    resolved = resolve_params({"model": "offline", "weights": True, "negative": "(blue:3)"})
    with pytest.raises(Refused) as refused:
        check_token_limits("a (red:1.5) circle", resolved)
    assert refused.value.message.startswith("negative, read with prompt weights: the weight 3")
    walk = resolve_params(
        {"model": "offline", "weights": True, "mode": "walk", "walk_to": "a (blue square"}
    )
    with pytest.raises(Refused, match=r"^walk_to, read with prompt weights: the '\('"):
        check_token_limits("a (red:1.5) circle", walk)


def test_without_weights_brackets_are_text_as_before():
    resolved = resolve_params({"model": "offline", "negative": "(blue:3"})
    assert check_token_limits("a (red:abc circle]", resolved) is resolved


# --- Tokens: what the encoder gets ------------------------------------------------------------


def test_the_syntax_is_no_tokens():
    plain = tokens.token_count(OFFLINE, "a red circle, big")
    assert tokens.token_count(OFFLINE, "a ((red:1.5)) [circle], (big)", weighted=True) == plain
    # Without weights the brackets, colon and digits are characters the encoder reads.
    assert tokens.token_count(OFFLINE, "a ((red:1.5)) [circle], (big)") > plain + 5
    assert tokens.token_count(OFFLINE, r"\(red\)", weighted=True) == tokens.token_count(
        OFFLINE, "(red)"
    )


def test_the_limit_counts_a_weighted_prompt_as_the_encoder_reads_it():
    # 22 tokens for the offline model, its limit: every word of its world is one token.
    words = (
        "a small red circle above a large blue square on a white background, outlined, "
        "striped red green blue pink grey"
    )
    weighted = words.replace("red circle", "(red:1.4) circle").replace(
        "blue square", "[blue] square"
    )
    resolved = resolve_params({"model": "offline", "weights": True})
    assert check_token_limits(weighted, resolved) is resolved
    with pytest.raises(Refused) as refused:
        check_token_limits(weighted, resolve_params({"model": "offline"}))
    assert refused.value.code == "prompt_too_long"
    with pytest.raises(Refused, match="text is 23 tokens"):
        check_token_limits(weighted + " (black)", resolved)


# --- The pixels -------------------------------------------------------------------------------


def render(*texts, weighted=True, **params):
    """The images of `texts` rendered together in one forward pass, as int16 arrays."""
    slots = [
        Slot(text, {**PICTURE, "weights": weighted, **params}, PICTURE["seed"]) for text in texts
    ]
    images, _ = pipelines.generate_batch(
        OFFLINE, slots, on_step=lambda *a: None, should_stop=lambda: False
    )
    return [np.asarray(image, dtype=np.int16) for image in images]


def redness(pixels):
    red, green, blue = (pixels[..., channel].astype(float) for channel in range(3))
    return float(np.mean(red - (green + blue) / 2))


def test_weights_change_the_picture():
    up, down, plain = render(
        "a (red:1.5) circle on a white background",
        "a (red:0.5) circle on a white background",
        RED_CIRCLE,
    )
    # Means of 5 to 25 of 255 here; a picture differs from itself by 0.
    assert np.abs(up - down).mean() > 2
    assert np.abs(up - plain).mean() > 2 and np.abs(down - plain).mean() > 2


def test_a_weight_of_zero_takes_the_word_out():
    """By its effect: the circle loses its red (at this seed it comes out blue)."""
    without, plain = render("a (red:0) circle on a white background", RED_CIRCLE)
    assert redness(plain) > 20
    assert redness(without) < 5


def test_a_weight_of_one_is_the_word_itself():
    (one,) = render("a (red:1.0) circle on a white background")
    (nested,) = render("a [(red)] circle on a white background")
    (plain,) = render(RED_CIRCLE, weighted=False)
    (unweighted,) = render(RED_CIRCLE)  # weights on, none written
    assert np.array_equal(one, plain)
    assert np.array_equal(nested, plain)
    assert np.array_equal(unweighted, plain)


def test_without_weights_the_brackets_are_read_as_characters():
    text = "a (red:0) circle on a white background"
    (literal,) = render(text, weighted=False)
    (weighed,) = render(text)
    assert not np.array_equal(literal, weighed)
    # The literal text's embedding is the pipeline's own, brackets and all.
    pipe = pipelines.get_pipeline(OFFLINE)
    assert modes.encoder_input(text, {"weights": False}) == text
    expected, _ = pipe.encode_prompt([text], "cpu", 1, False)
    cached = modes.embeddings(pipe, [text], "cpu")  # encoded beside the negative: float noise
    assert np.allclose(cached.numpy(), expected.detach().numpy(), atol=1e-5)


def test_a_weighted_negative_prompt_is_weighed():
    (plain,) = render(RED_CIRCLE, negative="blue")
    (weighed,) = render(RED_CIRCLE, negative="(blue:1.8)")
    (literal,) = render(RED_CIRCLE, negative="(blue:1.8)", weighted=False)
    assert np.abs(weighed - plain).mean() > 1
    assert not np.array_equal(weighed, literal)


def test_a_batch_keeps_each_renders_weights_to_itself():
    """A weighted and an unweighted render in one forward pass: each image is the one it is
    alone, and the same text without weights in the batch is not weighed."""
    text = "a (red:0) circle on a white background"
    (weighed_alone,) = render(text)
    (literal_alone,) = render(text, weighted=False)
    (other_alone,) = render("a blue square", weighted=False)
    slots = [
        Slot(text, {**PICTURE, "weights": True}, PICTURE["seed"]),
        Slot(text, {**PICTURE, "weights": False}, PICTURE["seed"]),
        Slot("a blue square", {**PICTURE, "weights": False}, PICTURE["seed"]),
    ]
    images, _ = pipelines.generate_batch(
        OFFLINE, slots, on_step=lambda *a: None, should_stop=lambda: False
    )
    together = [np.asarray(image, dtype=np.int16) for image in images]
    for alone, batched in zip((weighed_alone, literal_alone, other_alone), together, strict=True):
        assert np.abs(alone - batched).max() <= 2  # float noise of a larger matmul


def test_a_pipeline_given_text_never_draws_the_syntax():
    """SDXL's pipelines take their prompts as text (pooled embeddings): a weighted slot that
    got past the checks fails rather than render its brackets as words."""

    class Pooled:
        def __call__(self, prompt_embeds=None, pooled_prompt_embeds=None):
            pass

    slots = [Slot("a (red:1.5) circle", {**PICTURE, "weights": True}, 1)]
    with pytest.raises(ValueError, match="takes its prompts as text: no weights"):
        modes.prompt_arguments(Pooled(), slots, "cpu")


# --- A CLIP text encoder, as sd-turbo and sd15 have -------------------------------------------


@pytest.fixture(scope="module")
def clip_pipe(tmp_path_factory):
    """The offline model's UNet and VAE read by a small random CLIP text encoder, with CLIP's
    real tokenizer padding with "!" as SD 2's (sd-turbo's) does: the path compel was written
    for, with no hub."""
    import torch
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from generation import random_weights

    folder = tmp_path_factory.mktemp("clip") / "tokenizer"
    random_weights.write_clip_tokenizer(folder, pad_token="!")
    torch.manual_seed(0)
    config = CLIPTextConfig(
        hidden_size=64,  # the offline UNet's cross-attention width
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=64,
    )
    offline = pipelines.get_pipeline(OFFLINE)
    pipe = StableDiffusionPipeline(
        vae=offline.vae,
        text_encoder=CLIPTextModel(config).eval(),
        tokenizer=CLIPTokenizer.from_pretrained(folder, local_files_only=True),
        unet=offline.unet,
        scheduler=offline.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    yield pipe
    modes.forget(pipe)


def clip_render(pipe, text):
    import torch

    params = {**PICTURE, "width": 64, "height": 64, "steps": 2, "weights": True}
    arguments = modes.prompt_arguments(pipe, [Slot(text, params, 1)], "cpu")
    return pipe(
        num_inference_steps=2,
        guidance_scale=5.0,
        width=64,
        height=64,
        generator=torch.Generator("cpu").manual_seed(1),
        output_type="np",
        **arguments,
    ).images[0]


def test_a_clip_encoder_weighs_only_the_weighted_words(clip_pipe):
    """compel tokenizes, pads and masks as the pipeline does: a weight above 1 changes the rows
    of its own tokens (start token at 0, "a" at 1, "red" at 2) and no other."""
    (plain,) = modes.embeddings(clip_pipe, ["a red circle"], "cpu")
    (weighed,) = modes.embeddings(clip_pipe, [weights.parse("a (red:1.5) circle")], "cpu")
    changed = (weighed - plain).abs().amax(dim=-1) > 1e-5
    assert changed.nonzero().flatten().tolist() == [2]


def test_a_clip_encoders_weights_change_the_picture(clip_pipe):
    up = clip_render(clip_pipe, "a (red:1.5) circle")
    down = clip_render(clip_pipe, "a (red:0.5) circle")
    one = clip_render(clip_pipe, "a (red:1.0) circle")
    plain = clip_render(clip_pipe, "a red circle")
    assert np.abs(up - down).mean() > 1e-3
    assert np.array_equal(one, plain)
