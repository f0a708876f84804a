"""Loading models and running them. torch and diffusers are imported here, lazily, so the web
server and a Celery parent process start without them; each worker process keeps one warm
pipeline per preset."""

import functools
import logging
from collections import OrderedDict

from django.conf import settings

from generation import LOAD_LOCK, decoding, fast_path, modes, probe_pictures
from generation.errors import BadOutput, Cancelled, Filtered, GpuOutOfMemory
from generation.presets import OVERHEAD_PICTURES, OVERHEAD_PROBE, default_preset
from generation.samplers import make_scheduler

log = logging.getLogger(__name__)

# Preset name -> (pipeline, bytes of weights), least recently used first.
_pipelines = OrderedDict()


def get_pipeline(preset):
    """The preset's warm pipeline, loaded once per process. Loading one more model unloads the
    least recently used ones while the weights would pass PARTYHUB_MODEL_MEMORY_MB."""
    with LOAD_LOCK:
        if preset.name in _pipelines:
            _pipelines.move_to_end(preset.name)
            return _pipelines[preset.name][0]
        pipe = load_pipeline(preset)  # still in host memory: nothing on the GPU yet
        size = weight_bytes(pipe)
        _make_room(size, preset.name)
        # Autoregressive models are placed on the device by their own loaders.
        placed = _to_device(pipe) if preset.family == "diffusion" else pipe
        _pipelines[preset.name] = (placed, size)
        return _pipelines[preset.name][0]


def weight_bytes(pipe):
    """Bytes of a loaded model's parameters and buffers, over all its torch modules."""
    import torch

    parts = pipe.components.values() if hasattr(pipe, "components") else pipe
    modules = [part for part in parts if isinstance(part, torch.nn.Module)]
    return sum(
        tensor.numel() * tensor.element_size()
        for module in modules
        for tensor in (*module.parameters(), *module.buffers())
    )


def memory_budget():
    """PARTYHUB_MODEL_MEMORY_MB in bytes; 0 means 70% of the GPU's memory, or no limit on CPU."""
    if settings.PARTYHUB_MODEL_MEMORY_MB:
        return settings.PARTYHUB_MODEL_MEMORY_MB * 1024 * 1024
    if settings.PARTYHUB_DEVICE == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory * 0.7)
    return None


def _make_room(size, name):
    budget = memory_budget()
    if budget is None:
        return
    while _pipelines and sum(held for _, held in _pipelines.values()) + size > budget:
        evicted, (pipe, _) = _pipelines.popitem(last=False)
        log.info("unloading %s to make room for %s", evicted, name)
        modes.forget(pipe)
        del pipe
        free_gpu_memory()


def _to_device(pipe):
    pipe = pipe.to(settings.PARTYHUB_DEVICE)
    if settings.PARTYHUB_DEVICE == "cuda":
        fast_path.prepare(pipe)  # attention already uses torch's scaled_dot_product_attention
    return pipe


def warm_up():
    """Load the default model and the CLIP scorer before the first render needs them (about
    5 s on this project's 2-core machine, even offline: most of it importing torch)."""
    from generation import scoring

    preset = default_preset()
    if preset is not None and preset.name != OVERHEAD_PROBE and preset.is_available():
        try:
            get_pipeline(preset)
        except Exception:
            log.exception("could not load %s; renders with it will fail until fixed", preset.name)
    scoring.get_scorer()  # logs its own failure once


def load_pipeline(preset):
    """`from_pretrained` from `preset.weights_source()`: its local folder, its bundled weights
    or its hub id in the local cache. Raises presets.WeightsMissing when it has none: nothing is
    downloaded (local_files_only here, and HF_HUB_OFFLINE set in generation/__init__.py)."""
    source = preset.weights_source()
    if preset.family == "autoregressive":  # transformers, not diffusers
        from generation import autoregressive

        return autoregressive.load(preset, source)
    if preset.family == "clip-guided":  # an autoencoder and a CLIP, no pipeline
        from generation import clip_guided

        return clip_guided.load(source, settings.PARTYHUB_DEVICE, settings.PARTYHUB_DTYPE)
    import diffusers
    import torch

    _quiet_loading()
    log.info("loading %s from %s on %s", preset.name, source, settings.PARTYHUB_DEVICE)
    pipeline_class = getattr(diffusers, preset.pipeline)
    pipe = pipeline_class.from_pretrained(
        source, dtype=getattr(torch, settings.PARTYHUB_DTYPE), local_files_only=True
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


class _T5TextEncoderIsMeant(logging.Filter):
    """The bundled offline model reads prompts with a T5 encoder inside a Stable Diffusion
    pipeline, whose type hint names CLIP's (docs/models.md): diffusers warns of it at every load,
    and a newcomer's first `make run` would show it as if something were wrong."""

    def filter(self, record):
        message = record.getMessage()
        return not (message.startswith("Expected types for text_encoder") and ".t5." in message)


def _quiet_loading():
    """A server's log shows what loads (the line above), not progress bars drawn into it."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    pipeline_log = logging.getLogger("diffusers.pipelines.pipeline_utils")
    if not any(isinstance(f, _T5TextEncoderIsMeant) for f in pipeline_log.filters):
        pipeline_log.addFilter(_T5TextEncoderIsMeant())


def generate_batch(preset, slots, on_step, should_stop):
    """Render every slot in one forward pass; returns (images, safety flags or None) in order.

    The slots may come from several renders with one batch key. Each image has its own
    generator, so it is what it would be alone with its seed. `on_step(step, steps, latents)`
    reports progress; when `should_stop()` turns true the pipeline's interrupt flag ends
    denoising at the next step and Cancelled is raised. Out of GPU memory, the batch is tried
    once more in two halves, then GpuOutOfMemory is raised.
    """
    if preset.name == OVERHEAD_PROBE:
        return _blank_images(slots), None
    if preset.name == OVERHEAD_PICTURES:
        return _probe_pictures(slots), None
    if preset.family == "autoregressive":  # token by token, one image per seed; no safety flags
        from generation import autoregressive

        images = autoregressive.generate_slots(get_pipeline(preset), slots, on_step, should_stop)
        return images, None
    if preset.family == "clip-guided":  # optimised step by step; no safety flags
        from generation import clip_guided

        images = clip_guided.generate_slots(get_pipeline(preset), slots, on_step, should_stop)
        return images, None
    import torch

    pipe = modes.pipeline_for(get_pipeline(preset), slots[0].params["mode"])
    pipe.scheduler = make_scheduler(slots[0].params["sampler"], pipe.scheduler.config)
    step_end = StepCallback(on_step, should_stop)
    vae = fast_path.final_decoder(preset, pipe)

    def render(part):
        # Padded to its bucket with copies of its last image, which are then dropped.
        padded = part + [part[-1]] * (fast_path.bucket(len(part)) - len(part))
        images, flags = _render_batch(pipe, padded, step_end, vae)
        return images[: len(part)], None if flags is None else flags[: len(part)]

    try:
        images, flags = render(slots)
    except torch.cuda.OutOfMemoryError:
        free_gpu_memory()
        log.warning("out of GPU memory with %d images; trying again in halves", len(slots))
        try:
            halves = [render(part) for part in _halves(slots)]
        except torch.cuda.OutOfMemoryError:
            free_gpu_memory()
            raise GpuOutOfMemory() from None
        images = [image for part_images, _ in halves for image in part_images]
        flags = None if halves[0][1] is None else [f for _, part in halves for f in part]
    if step_end.stopped:
        raise Cancelled()
    return images, flags


class StepCallback:
    """`callback_on_step_end`: reports progress with the latents and raises the interrupt."""

    def __init__(self, on_step, should_stop):
        self.on_step, self.should_stop = on_step, should_stop
        self.stopped = False

    def __call__(self, pipeline, step, timestep, callback_kwargs):
        # img2img and inpaint run only steps x strength of the schedule: report what runs.
        self.on_step(step + 1, pipeline.num_timesteps, callback_kwargs["latents"])
        if self.should_stop():
            self.stopped = True
            pipeline._interrupt = True
        return callback_kwargs


def _render_batch(pipe, slots, step_end, vae):
    import torch

    device = settings.PARTYHUB_DEVICE
    arguments = modes.call_arguments(pipe, slots, device)
    if "prompt_embeds" not in arguments:  # a walk brings its own interpolated embeddings
        arguments.update(modes.prompt_arguments(pipe, slots, device))
    generators = [torch.Generator(device).manual_seed(slot.seed) for slot in slots]
    if "latents" in arguments:
        # Given its starting noise (a walk, a variation), the pipeline draws none, and an
        # ancestral sampler's (Euler a) noise at each step would begin where a plain render's
        # starting noise begins. Drawn and dropped here, so that a walk's first frame is its
        # seed's plain render, step noise included.
        for generator, slot in zip(generators, slots, strict=True):
            modes.draw_starting_noise(pipe, slot.params, generator)
    latents = pipe(
        num_inference_steps=slots[0].params["steps"],
        guidance_scale=slots[0].params["guidance"],
        generator=generators,
        callback_on_step_end=step_end,
        output_type="latent",  # decoded below, where bad output is caught
        **arguments,
    ).images
    if step_end.stopped:
        return [], None
    images, flags = decoding.decode(pipe, latents, vae)
    if slots[0].params["mode"] == "inpaint":
        images = modes.keep_unmasked(slots, images)
    return images, flags


def _halves(slots):
    middle = (len(slots) + 1) // 2
    return [part for part in (slots[:middle], slots[middle:]) if part]


def free_gpu_memory():
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


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


def _blank_images(slots):
    from PIL import Image

    size = (slots[0].params["width"], slots[0].params["height"])
    return [Image.new("RGB", size, "white") for _ in slots]


def _probe_pictures(slots):
    """The `overhead-pictures` probe: no model, then what follows any decode (the checks, the
    conversion to PIL images) as it runs for a real render."""
    pixels = probe_pictures.decoded(slots)  # stands for the model: a copy of cached pictures
    if not decoding.looks_valid(pixels):
        raise BadOutput()
    return decoding.to_pil(pixels, _probe_image_processor())


@functools.cache
def _probe_image_processor():
    from diffusers.image_processor import VaeImageProcessor

    return VaeImageProcessor()  # what Stable Diffusion's pipelines hold
