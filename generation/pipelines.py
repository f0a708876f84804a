"""Loading models and running them. torch and diffusers are imported here, lazily, so the web
server and a Celery parent process start without them; each worker process keeps one warm
pipeline per preset."""

import logging
import threading

from django.conf import settings

from generation import modes, offline_model, previews
from generation.presets import OFFLINE, OVERHEAD_PROBE, default_preset
from generation.samplers import make_scheduler

log = logging.getLogger(__name__)

_pipelines = {}
_load_lock = threading.Lock()


class Cancelled(Exception):
    """The render was cancelled between two denoising steps."""


class Filtered(Exception):
    """The pipeline's safety checker flagged every image of the render."""


def get_pipeline(preset):
    with _load_lock:
        if preset.name not in _pipelines:
            _pipelines[preset.name] = load_pipeline(preset)
        return _pipelines[preset.name]


def warm_up():
    """Load the default model before the first render needs it (seconds, even offline)."""
    preset = default_preset()
    if preset is None or preset.name == OVERHEAD_PROBE or not preset.is_available():
        return
    try:
        get_pipeline(preset)
    except Exception:
        log.exception("could not load %s; renders with it will fail until fixed", preset.name)


def load_pipeline(preset):
    """`from_pretrained` from the preset's local folder if present, else from its hub id."""
    import diffusers
    import torch

    folder = preset.local_folder()
    if preset.name == OFFLINE and not (folder / "model_index.json").exists():
        log.info("building the offline placeholder model in %s", folder)
        offline_model.build(folder)
    source = folder if (folder / "model_index.json").exists() else preset.source
    log.info("loading %s from %s on %s", preset.name, source, settings.PARTYHUB_DEVICE)
    pipeline_class = getattr(diffusers, preset.pipeline)
    pipe = pipeline_class.from_pretrained(source, dtype=getattr(torch, settings.PARTYHUB_DTYPE))
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(settings.PARTYHUB_DEVICE)


def generate(preset, prompt, params, on_step, should_stop):
    """Render `params["count"]` images for one prompt; image i uses seed `params["seed"] + i`.

    `on_step(step, steps)` reports progress; when `should_stop()` turns true the pipeline's
    interrupt flag ends denoising at the next step and Cancelled is raised.
    """
    seeds = [params["seed"] + i for i in range(params["count"])]
    if preset.name == OVERHEAD_PROBE:
        return _blank_images(params, seeds), seeds
    import torch

    device = settings.PARTYHUB_DEVICE
    pipe = modes.pipeline_for(get_pipeline(preset), params["mode"])
    pipe.scheduler = make_scheduler(params["sampler"], pipe.scheduler.config)
    # One generator per image, so each image is what it would be alone with its seed.
    generators = [torch.Generator(device).manual_seed(s) for s in seeds]
    stopped = False

    decoder = previews.get_decoder(preset)

    def step_end(pipeline, step, timestep, callback_kwargs):
        nonlocal stopped
        latents = callback_kwargs["latents"]
        # Decoded only if the reporter sends this step (it throttles to a few a second).
        preview = (lambda: previews.data_url(decoder, latents)) if decoder else None
        # img2img and inpaint run only steps x strength of the schedule: report what runs.
        on_step(step + 1, pipeline.num_timesteps, preview)
        if should_stop():
            stopped = True
            pipeline._interrupt = True
        return callback_kwargs

    count = params["count"]
    result = pipe(
        prompt=[prompt] * count,
        negative_prompt=[params["negative"]] * count if params["negative"] else None,
        num_inference_steps=params["steps"],
        guidance_scale=params["guidance"],
        generator=generators,
        callback_on_step_end=step_end,
        **modes.call_arguments(pipe, params, seeds, device),
    )
    if stopped:
        raise Cancelled()
    return drop_flagged(result.images, seeds, getattr(result, "nsfw_content_detected", None))


def drop_flagged(images, seeds, flags):
    """Keep the images the safety checker passed (sd15 has one; it blacks out the rest)."""
    if not flags:
        return images, seeds
    kept = [
        (image, seed)
        for image, seed, flagged in zip(images, seeds, flags, strict=True)
        if not flagged
    ]
    if not kept:
        raise Filtered()
    return [image for image, _ in kept], [seed for _, seed in kept]


def _blank_images(params, seeds):
    from PIL import Image

    return [Image.new("RGB", (params["width"], params["height"]), "white") for _ in seeds]
