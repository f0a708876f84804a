"""One warm pipeline per model per worker, within a memory budget: least recently used first out."""

from dataclasses import replace

import pytest

from generation import pipelines
from generation.presets import get_preset


@pytest.fixture
def two_small_models(models_dir, monkeypatch):
    """The offline model under two names (both load the bundled weights), and a pipeline cache
    of this test's own."""
    offline = get_preset("offline")
    twin = replace(offline, name="offline-twin")
    monkeypatch.setattr(pipelines, "_pipelines", pipelines.OrderedDict())
    return offline, twin


def test_loading_past_the_budget_unloads_the_least_recently_used(two_small_models, settings):
    offline, twin = two_small_models
    first = pipelines.get_pipeline(offline)
    size = pipelines.weight_bytes(first)
    assert size > 0
    settings.PARTYHUB_MODEL_MEMORY_MB = 1 + (size * 3 // 2) // (1024 * 1024)  # room for one
    assert pipelines.get_pipeline(offline) is first  # warm: not loaded again
    second = pipelines.get_pipeline(twin)
    assert list(pipelines._pipelines) == ["offline-twin"]
    assert pipelines.get_pipeline(twin) is second
    assert pipelines.get_pipeline(offline) is not first  # loaded afresh
    assert list(pipelines._pipelines) == ["offline"]


def test_without_a_budget_every_model_stays_warm(two_small_models, settings):
    offline, twin = two_small_models
    settings.PARTYHUB_MODEL_MEMORY_MB = 0  # on CPU: no limit
    first = pipelines.get_pipeline(offline)
    pipelines.get_pipeline(twin)
    assert pipelines.get_pipeline(offline) is first
    assert list(pipelines._pipelines) == ["offline-twin", "offline"]


def test_cached_prompt_embeddings_give_the_pipelines_own_images(monkeypatch):
    import numpy as np
    import torch

    from generation.modes import Slot

    preset = get_preset("offline")
    pipe = pipelines.get_pipeline(preset)
    params = {
        "mode": "txt2img",
        "model": "offline",
        "width": 64,
        "height": 64,
        "steps": 3,
        "guidance": 5.0,
        "sampler": "Euler",
        "negative": "blurry",
        "count": 1,
        "seed": 4,
    }
    calls = []
    real_encode = pipe.encode_prompt
    monkeypatch.setattr(
        pipe,
        "encode_prompt",
        lambda *args, **kwargs: calls.append(args[0]) or real_encode(*args, **kwargs),
    )

    def render(text):
        images, _ = pipelines.generate_batch(
            preset, [Slot(text, params, 4)], on_step=lambda *a: None, should_stop=lambda: False
        )
        return np.asarray(images[0], dtype=np.int16)

    ours = render("a red planet, seen from its moon")

    def encoded():
        # The pipeline calls encode_prompt itself too, with no text: it only passes ours on.
        return [text for text in calls if text is not None]

    # A batch's new texts are encoded together, here the prompt and its negative.
    assert encoded() == [["a red planet, seen from its moon", "blurry"]]
    assert (render("a red planet, seen from its moon") == ours).all()
    assert len(encoded()) == 1  # both embeddings came from the cache the second time
    monkeypatch.undo()
    own = pipe(
        prompt="a red planet, seen from its moon",
        negative_prompt="blurry",
        width=64,
        height=64,
        num_inference_steps=3,
        guidance_scale=5.0,
        generator=torch.Generator("cpu").manual_seed(4),
    ).images[0]
    assert np.abs(ours - np.asarray(own, dtype=np.int16)).max() <= 2


# A fresh process, as `make run` starts: its warm-up thread loads the default model while request
# threads load the CLIP (a stream's topic guard) and a tokenizer (GET /api/models), all importing
# the libraries for the first time.
SIDE_BY_SIDE = """
import threading
import django

django.setup()
from generation import pipelines, scoring, tokens
from generation.presets import get_preset

loads = [
    threading.Thread(target=pipelines.get_pipeline, args=(get_preset("offline"),)),
    threading.Thread(target=scoring.get_scorer),
    threading.Thread(target=tokens.token_limit, args=(get_preset("offline-clip-guided"),)),
]
for load in loads:
    load.start()
for load in loads:
    load.join()
limit = tokens.token_limit(get_preset("offline-clip-guided"))
print(list(pipelines._pipelines), scoring.get_scorer() is not None, limit)
"""


def test_the_model_and_the_clip_load_side_by_side_in_a_fresh_process():
    """Threads importing torchvision's modules at once deadlocked (Python raised _DeadlockError
    in one, and that load was remembered as failed for good): one model or tokenizer loads at a
    time."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    unset = ("PARTYHUB_CLIP_PRETRAINED", "PARTYHUB_CLIP_MODEL", "PARTYHUB_DEFAULT_MODEL")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", PARTYHUB_DEVICE="cpu")
    done = subprocess.run(
        [sys.executable, "-c", SIDE_BY_SIDE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['offline'] True 22", done.stderr[-2000:]
    assert "cannot read the tokenizer" not in done.stderr
