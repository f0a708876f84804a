"""Autoregressive text-to-image models: Janus (transformers' JanusForConditionalGeneration) and
the bundled offline one (offline/autoregressive.py: a GPT-2 over a VQModel's image tokens).

Where a diffusion model denoises a whole picture step after step, Janus writes it token by token:
its language model samples one VQ codebook entry per patch (576 for a 384x384 image, 24x24
patches), with classifier-free guidance against the same prompt blanked out, and its VQ decoder
turns the finished grid into pixels. A preset's `steps` is therefore the number of image tokens,
fixed by the model, and progress is reported per token.

torch and transformers are imported inside the functions: pipelines.py imports this module
lazily, so neither the web server nor a Celery parent process loads them at start-up.
"""

import logging

from django.conf import settings

from generation.errors import Cancelled, GpuOutOfMemory

log = logging.getLogger(__name__)

OFFLINE_CLASS = "GPT2LMHeadModel"  # the preset's `pipeline` for the bundled offline model


def load(preset, source):
    """Janus: the model and its processor; the offline model: its offline.autoregressive.Model.
    Each by `from_pretrained` from a local folder or a hub id in the local cache, never
    downloaded."""
    import torch
    import transformers

    if preset.pipeline == OFFLINE_CLASS:
        from offline import autoregressive as offline_ar

        log.info("loading %s from %s", preset.name, source)
        dtype = getattr(torch, settings.PARTYHUB_DTYPE)
        return offline_ar.load(source, dtype=dtype, device=settings.PARTYHUB_DEVICE)
    log.info("loading %s from %s on %s", preset.name, source, settings.PARTYHUB_DEVICE)
    model_class = getattr(transformers, preset.pipeline)
    model = model_class.from_pretrained(
        source, dtype=getattr(torch, settings.PARTYHUB_DTYPE), local_files_only=True
    )
    model = model.to(settings.PARTYHUB_DEVICE).eval()
    processor = transformers.AutoProcessor.from_pretrained(source, local_files_only=True)
    return model, processor


def geometry(config):
    """(image side in pixels, image tokens) that a Janus config generates: never a choice.

    The image is a square grid of `num_patches` VQ codes a side, each upsampled by the VQ
    decoder's levels (one 2x upsampling between each two of `channel_multiplier`'s levels).
    """
    vq = config.vq_config
    side = vq.num_patches * 2 ** (len(vq.channel_multiplier) - 1)
    return side, config.vision_config.num_image_tokens


def generate_slots(model, slots, on_step, should_stop):
    """pipelines.generate_batch for this family: one image per slot (prompt, params, seed).

    `on_step(tokens_done, tokens_total)` counts image tokens over all the slots; when
    `should_stop()` turns true, sampling ends at the next token and Cancelled is raised.
    """
    renders = [(slot.prompt, slot.params, slot.seed) for slot in slots]
    return _render(model, renders, on_step, should_stop)


def _is_offline(model):
    return not isinstance(model, tuple)  # Janus loads as (model, processor)


def _render(model, renders, on_step, should_stop):
    import torch

    if _is_offline(model):
        from offline import autoregressive as offline_ar

        side, tokens = offline_ar.SIZE, offline_ar.GRID**2
    else:
        side, tokens = geometry(model[0].config)
    for _, params, _ in renders:
        # The preset describes the model; a folder of another Janus is refused, not mislabelled.
        if (params["width"], params["height"], params["steps"]) != (side, side, tokens):
            raise ValueError(
                f"{params['model']} draws {side}x{side} images of {tokens} tokens, not "
                f"{params['width']}x{params['height']} of {params['steps']}: its preset does "
                "not match the weights."
            )
    counter = _TokenCounter(on_step, should_stop, total=tokens * len(renders))
    render_one = _render_offline if _is_offline(model) else _render_janus
    try:
        return [render_one(model, *render, counter) for render in renders]
    except torch.cuda.OutOfMemoryError:
        # One image at a time already: there are no halves to try, unlike a diffusion batch.
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise GpuOutOfMemory() from None


def _render_offline(model, prompt, params, seed, counter):
    from PIL import Image

    from offline import autoregressive as offline_ar

    # Guidance 1 is the caption's own logits (offline_ar.sample skips the empty caption's).
    codes = offline_ar.sample(model, [prompt], seed, float(params["guidance"]), [counter])
    return Image.fromarray(offline_ar.decode(model.vq, codes)[0])


def _render_janus(model_and_processor, prompt, params, seed, counter):
    import torch
    import torchvision.transforms.v2.functional as tvF
    from transformers import LogitsProcessorList

    model, processor = model_and_processor

    messages = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    # generation_mode="image" appends the begin-of-image token the image tokens follow.
    inputs = processor(text=text, generation_mode="image", return_tensors="pt")
    inputs = inputs.to(settings.PARTYHUB_DEVICE)
    processors = [counter]
    guidance = float(params["guidance"])
    if guidance <= 1:
        # Janus always runs the prompt and its blanked copy side by side, but transformers adds
        # its guidance processor only above 1 (which refuses 1): keep the prompt's own logits.
        processors.append(_ConditionalOnly())
    # Janus's image loop draws each token with torch.multinomial from the global generator (its
    # generate takes no torch.Generator), so each image seeds it and runs alone: the image of
    # a seed is the same in a render of one or of eight.
    torch.manual_seed(seed)
    image_tokens = model.generate(
        **inputs,
        generation_mode="image",
        do_sample=True,
        guidance_scale=guidance,
        # DeepSeek's reference sampler draws from the whole softmax; without this transformers
        # would add its global default top_k=50, which the checkpoint never asked for.
        top_k=0,
        logits_processor=LogitsProcessorList(processors),
    )
    pixels = model.decode_image_tokens(image_tokens)  # (1, height, width, 3) in [-1, 1]
    # The processor's own inverse of its normalisation and rescaling, to uint8. Its
    # return_tensors="PIL.Image.Image" fails in transformers 5.23's torchvision image processor
    # (it forwards the name to preprocess as a tensor type), so the last step is done here.
    (image,) = processor.postprocess(list(pixels.float()))["pixel_values"]
    return tvF.to_pil_image(image).convert("RGB")


class _TokenCounter:
    """A logits processor that runs once per sampled token: progress, and cancellation.

    Janus's image loop takes no stopping criteria (it always samples every token), so a
    cancelled render is stopped by raising Cancelled out of generate from here.
    """

    def __init__(self, on_step, should_stop, total):
        self.on_step, self.should_stop, self.total = on_step, should_stop, total
        self.done = 0

    def __call__(self, input_ids, scores):
        self.done += 1
        self.on_step(self.done, self.total)
        if self.should_stop():
            raise Cancelled()
        return scores


class _ConditionalOnly:
    """Guidance 1: the prompt's logits (first half of the batch), the blank prompt's dropped."""

    def __call__(self, input_ids, scores):
        return scores[: scores.shape[0] // 2]
