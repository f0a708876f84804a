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


def _load(preset):
    import torch
    from diffusers import AutoencoderTiny

    from generation.presets import in_hub_cache

    folder_name, hub_id = preset.preview_decoder
    folder = Path(settings.PARTYHUB_MODELS_DIR) / folder_name
    if (folder / "config.json").exists():
        source = folder
    elif hub_id and in_hub_cache(hub_id, "config.json"):
        source = hub_id
    else:
        log.info(
            "no preview decoder for %s (%s, %s): renders go without previews; fetch it once "
            "with `hf download %s --local-dir %s`",
            preset.name,
            folder,
            hub_id,
            hub_id,
            folder,
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
        import torch

        decoder.to(memory_format=torch.channels_last)  # as fast_path does for the VAE
    return decoder
