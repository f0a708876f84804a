"""GPU faults raised as the real exception types from inside the real pipeline: out of memory,
NaN or flat output, and the Celery parent that must never load torch."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from generation.pipelines import get_pipeline
from generation.presets import get_preset
from partyhub.jobs.runner import run_render
from partyhub.models import Member, Render
from tests.conftest import render_pixels

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"width": 64, "height": 64, "steps": 2, "sampler": "Euler", "seed": 21}


@pytest.fixture
def pipe():
    return get_pipeline(get_preset("offline"))


def submit(party, host, **params):
    author = Member.objects.get(session_key=host.session_key)
    _, render = party.submit_prompt(author, "a red planet", params={**SMALL, **params})
    run_render(render.pk)
    render.refresh_from_db()
    return render


def test_out_of_memory_retries_in_halves_with_the_same_images(party, host, pipe, monkeypatch):
    expected = render_pixels(submit(party, host, count=2))
    real_forward = pipe.unet.forward
    batches = []

    def forward(sample, *args, **kwargs):
        batches.append(sample.shape[0])
        if sample.shape[0] > 2:  # two images with classifier-free guidance: four rows
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(sample, *args, **kwargs)

    monkeypatch.setattr(pipe.unet, "forward", forward)
    render = submit(party, host, count=2)
    assert render.status == Render.Status.DONE
    assert batches[0] == 4 and set(batches[1:]) == {2}
    got = render_pixels(render)
    assert all(np.abs(a - b).max() <= 1 for a, b in zip(got, expected, strict=True))


def test_out_of_memory_twice_fails_the_render_and_the_worker_goes_on(
    party, host, pipe, monkeypatch
):
    def forward(sample, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory.")

    monkeypatch.setattr(pipe.unet, "forward", forward)
    failed = submit(party, host, count=2)
    assert (failed.status, failed.error_code) == (Render.Status.FAILED, "gpu_oom")
    assert not failed.images.exists()
    monkeypatch.undo()
    assert submit(party, host).status == Render.Status.DONE


def test_nan_output_is_decoded_again_in_float32(party, host, pipe, monkeypatch):
    real_decode = pipe.vae.decode
    calls = []

    def decode(latents, *args, **kwargs):
        calls.append(latents.dtype)
        output = real_decode(latents, *args, **kwargs)
        if len(calls) == 1:
            output.sample[:] = float("nan")  # a half-precision VAE overflowing
        return output

    monkeypatch.setattr(pipe.vae, "decode", decode)
    render = submit(party, host)
    assert render.status == Render.Status.DONE
    assert calls == [pipe.vae.dtype, torch.float32]
    assert render_pixels(render)[0].std() > 0


@pytest.mark.parametrize("bad_value", [float("nan"), 0.0])
def test_output_still_nan_or_flat_fails_as_bad_output(party, host, pipe, monkeypatch, bad_value):
    real_decode = pipe.vae.decode

    def decode(latents, *args, **kwargs):
        output = real_decode(latents, *args, **kwargs)
        output.sample[:] = bad_value
        return output

    monkeypatch.setattr(pipe.vae, "decode", decode)
    render = submit(party, host)
    assert (render.status, render.error_code) == (Render.Status.FAILED, "bad_output")
    assert not render.images.exists()


def test_the_celery_parent_starts_without_torch():
    # A Celery prefork parent that imported torch (and so maybe CUDA) would hand a broken CUDA
    # context to every forked child.
    code = (
        "import sys, django; django.setup();"
        "from config.celery import app; app.loader.import_default_modules();"
        "import partyhub.jobs.tasks;"
        "print('torch' in sys.modules, 'diffusers' in sys.modules)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "x"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["False", "False"]


def test_the_soft_time_limit_frees_gpu_memory_and_ends_the_render_timed_out(
    party, host, pipe, monkeypatch
):
    from celery.exceptions import SoftTimeLimitExceeded

    freed = []
    monkeypatch.setattr("partyhub.jobs.runner.free_gpu_memory", lambda: freed.append(True))

    def interrupted(pipeline, step, timestep, callback_kwargs):
        raise SoftTimeLimitExceeded()  # as Celery's signal handler raises it, mid-denoising

    real_call = type(pipe).__call__

    def call(self, *args, **kwargs):
        return real_call(self, *args, **{**kwargs, "callback_on_step_end": interrupted})

    monkeypatch.setattr(type(pipe), "__call__", call)
    render = submit(party, host)
    assert (render.status, render.error_code) == (Render.Status.FAILED, "timed_out")
    assert freed == [True]
    assert not render.images.exists()
