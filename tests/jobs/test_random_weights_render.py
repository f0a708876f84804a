"""SD-Turbo's real architecture with random weights (generation/random_weights.py), built with
no hub, saved as PARTYHUB_MODELS_DIR/sd-turbo and rendered through the whole worker on the CPU:
the preset's own from_pretrained loads it as it would downloaded weights."""

import shutil

import pytest
from PIL import Image as PILImage

from generation import modes, pipelines, random_weights
from generation.presets import get_preset
from partyhub.jobs.runner import run_render
from partyhub.models import Member, Render

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def random_sd_turbo(settings, tmp_path_factory):
    """sd-turbo's folder of random weights, alone in a models folder; the 2.6 GB on disk and the
    loaded pipeline (5 GB in float32) are let go after the test."""
    models = tmp_path_factory.mktemp("random-models")
    settings.PARTYHUB_MODELS_DIR = models
    yield random_weights.ensure(get_preset("sd-turbo"))
    loaded = pipelines._pipelines.pop("sd-turbo", None)
    if loaded is not None:
        modes.forget(loaded[0])
    del loaded
    pipelines.free_gpu_memory()
    shutil.rmtree(models)


def test_it_renders_sd_turbo_at_512_through_the_worker(party, host, random_sd_turbo, settings):
    assert random_weights.is_random(random_sd_turbo)
    assert get_preset("sd-turbo").weights_source() == random_sd_turbo
    pm = Member.objects.get(session_key=host.session_key)
    _, render = party.submit_prompt(pm, "a lighthouse at dusk", params={"model": "sd-turbo"})
    assert (render.params["steps"], render.params["guidance"]) == (1, 0.0)  # the preset's

    run_render(render.pk)

    render.refresh_from_db()
    assert render.status == Render.Status.DONE, render.error
    (image,) = render.images.all()
    png = PILImage.open(settings.MEDIA_ROOT / image.file.name)
    assert png.size == (image.width, image.height) == (512, 512)
    assert "Model: sd-turbo" in png.text["parameters"]
