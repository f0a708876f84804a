"""Each preset's TAESD (diffusers' AutoencoderTiny), loaded once per process: the decoder of the
live previews (generation/previews.py), and with PARTYHUB_FINAL_DECODER=tiny of the final images
(generation/fast_path.py). It loads with `from_pretrained` from a folder under
PARTYHUB_MODELS_DIR named after it (`taesd`, `taesdxl`) or from its hub id in the local cache,
never downloaded."""

import logging
import threading
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

_decoders = {}
_lock = threading.Lock()


def tiny_decoder(preset):
    """The preset's TAESD, loaded once per process (the previews' decoder, and with
    PARTYHUB_FINAL_DECODER=tiny the final one); None when it has none."""
    if not preset.preview_decoder:
        return None
    with _lock:
        if preset.preview_decoder not in _decoders:
            _decoders[preset.preview_decoder] = _load(preset)
        return _decoders[preset.preview_decoder]


def folder_of(preset):
    """Where the preset's TAESD goes under PARTYHUB_MODELS_DIR (its `preview_decoder` folder)."""
    return Path(settings.PARTYHUB_MODELS_DIR) / preset.preview_decoder[0]


def source_of(preset):
    """What the preset's TAESD loads from: its folder, else its hub id where the local cache
    holds it, else None."""
    from generation.presets import in_hub_cache

    hub_id = preset.preview_decoder[1]
    if (folder_of(preset) / "config.json").exists():
        return folder_of(preset)
    if hub_id and in_hub_cache(hub_id, "config.json"):
        return hub_id
    return None


def _load(preset):
    import torch
    from diffusers import AutoencoderTiny

    source = source_of(preset)
    if source is None:
        hub_id = preset.preview_decoder[1]
        log.info(
            "no preview decoder for %s (%s, %s): renders go without previews; fetch it once "
            "with `hf download %s --local-dir %s`",
            preset.name,
            folder_of(preset),
            hub_id,
            hub_id,
            folder_of(preset),
        )
        return None
    try:
        # local_files_only: a decoder cached in part (its config, not its weights) fails here
        # instead of fetching the rest.
        decoder = AutoencoderTiny.from_pretrained(
            source, dtype=getattr(torch, settings.PARTYHUB_DTYPE), local_files_only=True
        )
    except OSError as exc:
        # Previews are an extra: a broken decoder costs the renders their previews, not the
        # renders themselves.
        log.error("preview decoder %s did not load (%s): renders go without previews", source, exc)
        return None
    decoder = decoder.to(settings.PARTYHUB_DEVICE).eval()
    if settings.PARTYHUB_DEVICE == "cuda":
        decoder.to(memory_format=torch.channels_last)  # as fast_path does for the VAE
    return decoder
