"""generation/random_weights.py without building a model: the CLIP tokenizer rebuilt from
open_clip's BPE file, and which folders it builds, reuses or refuses to touch."""

import json

import pytest

from generation import random_weights
from generation.presets import get_preset


def test_the_clip_tokenizer_gives_openais_ids(tmp_path):
    from transformers import CLIPTokenizer

    random_weights.write_clip_tokenizer(tmp_path / "tokenizer", pad_token="<|endoftext|>")
    tokenizer = CLIPTokenizer.from_pretrained(tmp_path / "tokenizer", local_files_only=True)
    assert len(tokenizer) == 49408
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tokenizer.model_max_length == 77


def test_sd2_tokenizers_pad_with_an_exclamation_mark(tmp_path):
    from transformers import CLIPTokenizer

    random_weights.write_clip_tokenizer(tmp_path / "tokenizer", pad_token="!")
    tokenizer = CLIPTokenizer.from_pretrained(tmp_path / "tokenizer", local_files_only=True)
    padded = tokenizer("a cat", padding="max_length", max_length=6).input_ids
    assert padded == [49406, 320, 2368, 49407, 0, 0]


@pytest.fixture
def fake_build(monkeypatch):
    """Builds count, and write only a model_index.json."""
    builds = []

    def build(spec, folder):
        builds.append(folder)
        folder.mkdir(parents=True)
        (folder / "model_index.json").write_text("{}")

    monkeypatch.setattr(random_weights, "build_diffusion", build)
    return builds


def test_a_complete_folder_is_reused(settings, tmp_path, fake_build):
    settings.PARTYHUB_MODELS_DIR = tmp_path
    preset = get_preset("sd-turbo")
    folder = random_weights.ensure(preset)
    assert folder == tmp_path / "sd-turbo" and random_weights.is_random(folder)
    assert random_weights.ensure(preset) == folder
    assert len(fake_build) == 1


def test_a_half_built_folder_is_never_what_the_preset_loads(settings, tmp_path, fake_build):
    settings.PARTYHUB_MODELS_DIR = tmp_path
    leftover = tmp_path / "sd-turbo.building"
    leftover.mkdir()
    (leftover / "model_index.json").write_text("{}")  # a build that died before its marker
    assert not get_preset("sd-turbo").is_available()
    random_weights.ensure(get_preset("sd-turbo"))
    assert not leftover.exists() and len(fake_build) == 1


def test_a_folder_built_from_other_configs_is_built_again(settings, tmp_path, fake_build):
    settings.PARTYHUB_MODELS_DIR = tmp_path
    folder = random_weights.ensure(get_preset("sd-turbo"))
    (folder / random_weights.MARKER).write_text(json.dumps({"spec": "older"}))
    random_weights.ensure(get_preset("sd-turbo"))
    assert len(fake_build) == 2


def test_real_weights_are_never_touched(settings, tmp_path, fake_build):
    settings.PARTYHUB_MODELS_DIR = tmp_path
    (tmp_path / "sd-turbo").mkdir()
    (tmp_path / "sd-turbo" / "model_index.json").write_text('{"real": true}')
    with pytest.raises(ValueError, match="did not build"):
        random_weights.ensure(get_preset("sd-turbo"))
    assert (tmp_path / "sd-turbo" / "model_index.json").read_text() == '{"real": true}'
    assert fake_build == []


def test_only_presets_with_a_published_config_are_built(settings, tmp_path):
    settings.PARTYHUB_MODELS_DIR = tmp_path
    with pytest.raises(ValueError, match="no published config"):
        random_weights.ensure(get_preset("offline"))
