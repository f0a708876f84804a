"""The GPU's fast path (generation/fast_path.py), checked on the CPU by its effect: batches
padded to their bucket give the images they would alone, TAESD decodes the final images when
PARTYHUB_FINAL_DECODER says so, and fused QKV projections keep the pictures."""

import dataclasses

import numpy as np
import pytest

from generation import fast_path, pipelines, taesd
from generation.modes import Slot
from generation.params import resolve_params
from generation.presets import get_preset
from generation.random_weights import ensure_tiny_decoder

SMALL = {"model": "offline", "width": 64, "height": 64, "steps": 2, "sampler": "Euler"}


def slots(count, text="a red circle"):
    params = resolve_params(dict(SMALL))
    return [Slot(text, params, seed=seed) for seed in range(count)]


def render(preset, batch):
    images, _ = pipelines.generate_batch(preset, batch, lambda *a: None, lambda: False)
    return [np.asarray(image, dtype=np.int16) for image in images]


@pytest.mark.parametrize(
    ("compile_on", "device", "expected"),
    [
        (False, "cuda", [1, 3, 5, 32]),
        (True, "cpu", [1, 3, 5, 32]),
        (True, "cuda", [1, 4, 8, 32]),
    ],
)
def test_batches_are_bucketed_only_for_a_compiled_model_on_cuda(
    settings, compile_on, device, expected
):
    settings.PARTYHUB_COMPILE, settings.PARTYHUB_DEVICE = compile_on, device
    settings.PARTYHUB_MAX_BATCH = 32
    assert [fast_path.bucket(n) for n in (1, 3, 5, 32)] == expected


def test_buckets_never_pass_the_batch_cap(settings):
    settings.PARTYHUB_COMPILE, settings.PARTYHUB_DEVICE, settings.PARTYHUB_MAX_BATCH = (
        True,
        "cuda",
        12,
    )
    assert [fast_path.bucket(n) for n in (9, 12)] == [12, 12]


def test_a_padded_batch_gives_each_image_as_it_is_unpadded(monkeypatch):
    preset = get_preset("offline")
    unet = pipelines.get_pipeline(preset).unet
    rows, real = [], unet.forward

    def forward(sample, *args, **kwargs):
        rows.append(sample.shape[0])
        return real(sample, *args, **kwargs)

    monkeypatch.setattr(unet, "forward", forward)
    plain = render(preset, slots(3))
    monkeypatch.setattr(fast_path, "bucket", lambda images: 4)
    padded = render(preset, slots(3))
    guided = 2 if resolve_params(dict(SMALL))["guidance"] > 1 else 1  # classifier-free guidance
    assert set(rows) == {3 * guided, 4 * guided}  # the second pass ran four images
    assert len(padded) == 3
    for alone, with_padding in zip(plain, padded, strict=True):
        assert np.abs(alone - with_padding).max() <= 2  # float noise of a larger matmul


def test_the_tiny_final_decoder_decodes_the_images_when_asked(settings, monkeypatch):
    # The offline model has no TAESD; one with TAESD's published architecture and random
    # weights stands in, as a downloaded one would sit under PARTYHUB_MODELS_DIR.
    monkeypatch.setattr(taesd, "_decoders", {})  # this folder's decoder, for this test only
    preset = dataclasses.replace(get_preset("offline"), preview_decoder=("taesd", ""))
    ensure_tiny_decoder(preset)
    tiny = taesd.tiny_decoder(preset)
    vae = pipelines.get_pipeline(preset).vae
    calls = []
    for name, decoder in (("tiny", tiny), ("vae", vae)):
        monkeypatch.setattr(decoder, "decode", spy(decoder.decode, name, calls))

    full = render(preset, slots(2))
    assert calls == ["vae"]
    calls.clear()
    settings.PARTYHUB_FINAL_DECODER = "tiny"
    fast = render(preset, slots(2))
    assert calls == ["tiny"]
    assert any(np.abs(a - b).max() > 16 for a, b in zip(full, fast, strict=True))


def spy(decode, name, calls):
    def decoding(*args, **kwargs):
        calls.append(name)
        return decode(*args, **kwargs)

    return decoding


def test_fused_qkv_projections_keep_the_pictures(monkeypatch):
    import torch

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)  # prepare turns it on

    def draw(pipe):
        return pipe(
            "a blue square",
            num_inference_steps=2,
            width=64,
            height=64,
            generator=torch.Generator().manual_seed(7),
            output_type="np",
        ).images

    pipe = pipelines.load_pipeline(get_preset("offline"))  # its own copy, not the cached one
    before = draw(pipe)
    fast_path.prepare(pipe)
    processors = {type(p).__name__ for p in pipe.unet.attn_processors.values()}
    assert processors == {"FusedAttnProcessor2_0"} and torch.backends.cudnn.benchmark
    assert np.abs(before - draw(pipe)).max() < 1e-3


def test_a_tiny_final_decoder_the_model_lacks_is_said_at_startup(settings):
    from generation.checks import tiny_final_decoder_is_there

    settings.PARTYHUB_FINAL_DECODER = "tiny"  # the default model, offline, has no TAESD
    warnings = tiny_final_decoder_is_there(None)
    assert [w.id for w in warnings] == ["generation.W001"]
    assert "offline has no TAESD" in warnings[0].msg
    settings.PARTYHUB_FINAL_DECODER = "full"
    assert tiny_final_decoder_is_there(None) == []


def test_a_missing_taesd_is_said_with_how_to_fetch_it_and_a_present_one_is_not(settings, tmp_path):
    from generation.checks import tiny_final_decoder_is_there

    settings.PARTYHUB_FINAL_DECODER, settings.PARTYHUB_DEFAULT_MODEL = "tiny", "sd-turbo"
    settings.PARTYHUB_MODELS_DIR = tmp_path  # no TAESD in it yet
    (warning,) = tiny_final_decoder_is_there(None)
    assert "hf download madebyollin/taesd --local-dir" in warning.hint
    ensure_tiny_decoder(get_preset("sd-turbo"))
    assert tiny_final_decoder_is_there(None) == []
