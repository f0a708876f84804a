"""PartyHub never downloads at run time, and that does not rest on the availability check alone.

Two layers keep every model load on this machine: each `from_pretrained` passes
local_files_only=True, and partyhub/__init__.py sets HF_HUB_OFFLINE=1 before huggingface_hub is
imported. A preset whose weights are nowhere on disk fails with a message that says where they
were looked for and how to fetch them. Every test here runs against an empty, temporary Hugging
Face cache, with any network connection turned into a recorded failure; weights cached only in
part get past the availability check and still reach no network, with either layer alone.
"""

import logging
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from generation import pipelines, previews, taesd
from generation.presets import BUNDLED_WEIGHTS, PRESETS, WeightsMissing, get_preset
from partyhub.models import Member, Render

REPO = Path(__file__).resolve().parents[2]
LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}  # PostgreSQL and Redis in the tests


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache of this test's own; the real one is never consulted."""
    import huggingface_hub.constants

    home = tmp_path / "hf"
    cache = home / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    # huggingface_hub reads both once, at import: its constants are what it consults later.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HOME", str(home))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def cache_files(cache, repo, files):
    """Put files of a hub repo in the cache in the layout `hf download` leaves behind."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0123abcd")
    for name, text in files.items():
        path = folder / "snapshots" / "0123abcd" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def network_attempts(monkeypatch):
    """Every attempt to resolve or connect to a host other than this machine: recorded, and
    failed loudly (the libraries may wrap the AssertionError; the record still shows it)."""
    attempts = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def refuse(address):
        attempts.append(address)
        raise AssertionError(f"a network connection to {address!r}")

    def is_local(address):
        return not isinstance(address, tuple) or address[0] in LOCAL_HOSTS  # unix sockets

    def connect(sock, address):
        return real_connect(sock, address) if is_local(address) else refuse(address)

    def create_connection(address, *args, **kwargs):
        refuse(address)

    def getaddrinfo(host, port, *args, **kwargs):
        if host in LOCAL_HOSTS:
            return real_getaddrinfo(host, port, *args, **kwargs)
        refuse((host, port))

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


@pytest.fixture
def fresh_pipelines(monkeypatch):
    monkeypatch.setattr(pipelines, "_pipelines", pipelines.OrderedDict())


# Each layer alone keeps a load off the network: local_files_only with huggingface_hub's offline
# mode turned back off, and offline mode with local_files_only dropped from the calls.
LAYERS = ["both", "local_files_only alone", "HF_HUB_OFFLINE alone"]


@pytest.fixture(params=LAYERS)
def layer(request, monkeypatch):
    import diffusers
    import huggingface_hub.constants
    import transformers

    if request.param == "local_files_only alone":
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    elif request.param == "HF_HUB_OFFLINE alone":
        for owner in (
            diffusers.DiffusionPipeline,
            diffusers.ModelMixin,
            transformers.PreTrainedModel,
            transformers.AutoProcessor,
        ):
            real = owner.from_pretrained.__func__

            def without(cls, *args, _real=real, local_files_only=None, **kwargs):
                return _real(cls, *args, **kwargs)

            monkeypatch.setattr(owner, "from_pretrained", classmethod(without))
    return request.param


def test_the_guard_sees_a_download_attempt(hub_cache, network_attempts, monkeypatch):
    """The other tests' "no network" means something: with offline mode off, a download is
    caught by the guard."""
    import huggingface_hub
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(Exception):  # noqa: B017 (the guard's AssertionError, maybe wrapped)
        huggingface_hub.hf_hub_download("nobody/not-cached", "config.json")
    assert network_attempts and network_attempts[0][0] == "huggingface.co"


# --- Nothing on disk: a clear error, before any library is asked -------------------------------


def test_a_diffusion_model_not_on_disk_says_where_it_looked_and_how_to_fetch_it(
    hub_cache, network_attempts, settings, tmp_path, fresh_pipelines
):
    settings.PARTYHUB_MODELS_DIR = tmp_path / "models"
    preset = get_preset("sd-turbo")
    assert not preset.is_available()
    with pytest.raises(WeightsMissing) as missing:
        pipelines.get_pipeline(preset)
    message = str(missing.value)
    folder = tmp_path / "models" / "sd-turbo"
    assert "never downloads" in message
    assert f"hf download stabilityai/sd-turbo --local-dir {folder}" in message
    assert str(folder / "model_index.json") in message
    assert str(hub_cache) in message
    assert len(message) <= 500  # all of it fits in a failed render's error_message
    assert network_attempts == []
    assert "sd-turbo" not in pipelines._pipelines


def test_an_autoregressive_model_not_on_disk_is_the_same_clear_error(
    hub_cache, network_attempts, settings, tmp_path, fresh_pipelines
):
    settings.PARTYHUB_MODELS_DIR = tmp_path / "models"
    preset = get_preset("janus-pro-1b")
    with pytest.raises(WeightsMissing, match="hf download deepseek-community/Janus-Pro-1B"):
        pipelines.load_pipeline(preset)
    assert network_attempts == []


def test_missing_bundled_weights_are_a_clear_error_too(settings, tmp_path, network_attempts):
    settings.PARTYHUB_MODELS_DIR = tmp_path / "models"
    # offline-ar's transformer is not shipped yet: its folder has no config.json.
    preset = get_preset("offline-ar")
    assert not (BUNDLED_WEIGHTS / "autoregressive" / "config.json").exists()
    with pytest.raises(WeightsMissing, match="shipped with PartyHub") as missing:
        pipelines.load_pipeline(preset)
    assert str(BUNDLED_WEIGHTS / "autoregressive") in str(missing.value)
    assert network_attempts == []


def test_a_preview_decoder_not_on_disk_means_no_previews_and_says_how_to_fetch_it(
    hub_cache, network_attempts, settings, tmp_path, caplog
):
    settings.PARTYHUB_MODELS_DIR = tmp_path / "models"
    preset = replace(get_preset("sd-turbo"), preview_decoder=("taesd-gone", "nobody/taesd-gone"))
    taesd._decoders.pop(preset.preview_decoder, None)
    with caplog.at_level(logging.INFO, logger="generation.taesd"):
        assert previews.get_decoder(preset) is None
    assert "hf download nobody/taesd-gone" in caplog.text
    assert network_attempts == []


@pytest.mark.django_db(transaction=True)
def test_a_render_whose_weights_are_gone_fails_with_the_message(
    hub_cache, network_attempts, settings, tmp_path, fresh_pipelines, party, host, monkeypatch
):
    """Weights there when the render was asked for and gone when it runs: the render fails
    with the way to fetch them, and nothing is downloaded."""
    from partyhub.jobs.runner import run_render

    monkeypatch.setattr("partyhub.jobs.watch.group_send", lambda group, message: None)
    folder = tmp_path / "models" / "sd-turbo"
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    settings.PARTYHUB_MODELS_DIR = tmp_path / "models"
    author = Member.objects.get(session_key=host.session_key)
    _, render = party.submit_prompt(
        author, "a lighthouse", params={"model": "sd-turbo", "width": 256, "height": 256}
    )
    (folder / "model_index.json").unlink()
    run_render(render.pk)
    render.refresh_from_db()
    assert (render.status, render.error_code) == (Render.Status.FAILED, "model_unavailable")
    assert "hf download stabilityai/sd-turbo" in render.error_message
    assert network_attempts == []


# --- Weights cached in part: past the availability check, and still no network ----------------


def test_a_pipeline_cached_in_part_fails_without_downloading_the_rest(
    hub_cache, network_attempts, settings, tmp_path, fresh_pipelines, layer
):
    settings.PARTYHUB_MODELS_DIR = tmp_path / "models"
    index = (BUNDLED_WEIGHTS / "diffusion" / "model_index.json").read_text()
    cache_files(hub_cache, "nobody/half-cached-sd", {"model_index.json": index})
    preset = replace(PRESETS["sd-turbo"], name="half-cached-sd", source="nobody/half-cached-sd")
    assert preset.is_available()  # the check is passed: only from_pretrained stands guard
    with pytest.raises(OSError):
        pipelines.load_pipeline(preset)
    assert network_attempts == []


def test_a_preview_decoder_cached_in_part_means_no_previews_without_downloading(
    hub_cache, network_attempts, settings, tmp_path, layer, caplog
):
    settings.PARTYHUB_MODELS_DIR = tmp_path / "models"
    cache_files(
        hub_cache, "nobody/half-cached-taesd", {"config.json": '{"_class_name": "AutoencoderTiny"}'}
    )
    preset = replace(
        get_preset("sd-turbo"), preview_decoder=("taesd-half", "nobody/half-cached-taesd")
    )
    taesd._decoders.pop(preset.preview_decoder, None)
    with caplog.at_level(logging.ERROR, logger="generation.taesd"):
        assert previews.get_decoder(preset) is None  # the render goes on, without previews
    taesd._decoders.pop(preset.preview_decoder, None)
    assert "did not load" in caplog.text
    assert network_attempts == []


def test_an_autoregressive_model_cached_in_part_fails_without_downloading_the_rest(
    hub_cache, network_attempts, settings, tmp_path, fresh_pipelines, layer
):
    from transformers import JanusConfig

    settings.PARTYHUB_MODELS_DIR = tmp_path / "models"
    cache_files(
        hub_cache, "nobody/half-cached-janus", {"config.json": JanusConfig().to_json_string()}
    )
    preset = replace(PRESETS["janus-pro-1b"], source="nobody/half-cached-janus")
    assert preset.is_available()
    with pytest.raises(OSError):
        pipelines.load_pipeline(preset)
    assert network_attempts == []


# --- HF_HUB_OFFLINE is the app's own ----------------------------------------------------------


def test_the_app_runs_with_huggingface_hub_offline():
    import diffusers.utils.hub_utils
    import huggingface_hub
    import huggingface_hub.constants

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert huggingface_hub.is_offline_mode()
    # diffusers copies the flag when it is imported: it was set before that too.
    assert diffusers.utils.hub_utils.HF_HUB_OFFLINE is True


def test_the_app_sets_it_whatever_the_environment_says():
    """Set, not defaulted, and before Django, Celery or anything else can import
    huggingface_hub: a process started with HF_HUB_OFFLINE=0 is offline once it loads the app."""
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "DJANGO_SETTINGS_MODULE": "config.settings"}
    code = (
        "import django; django.setup(); import huggingface_hub.constants as c; "
        "print(c.HF_HUB_OFFLINE)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"
