from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def default_model_is_a_preset(app_configs, **kwargs):
    from generation.presets import all_presets

    if settings.PARTYHUB_DEFAULT_MODEL in all_presets():
        return []
    return [
        Error(
            f"PARTYHUB_DEFAULT_MODEL={settings.PARTYHUB_DEFAULT_MODEL!r} is not a preset.",
            hint=f"Use one of {sorted(all_presets())}.",
            id="generation.E001",
        )
    ]


@register()
def tiny_final_decoder_is_there(app_configs, **kwargs):
    """PARTYHUB_FINAL_DECODER=tiny with no TAESD for the default model decodes with its VAE:
    said at startup, not found out from render times."""
    from generation import taesd
    from generation.presets import default_preset

    preset = default_preset()
    if settings.PARTYHUB_FINAL_DECODER != "tiny" or preset is None:
        return []
    if not preset.preview_decoder:
        reason, hint = f"{preset.name} has no TAESD", "Set PARTYHUB_FINAL_DECODER=full."
    else:
        if taesd.source_of(preset) is not None:
            return []
        path, hub_id = taesd.folder_of(preset), preset.preview_decoder[1]
        reason = f"neither {path} nor the local cache of {hub_id} holds its TAESD"
        hint = f"Fetch it once: .venv/bin/hf download {hub_id} --local-dir {path}"
    return [
        Warning(
            f"PARTYHUB_FINAL_DECODER=tiny, but {reason}: its images are decoded by its VAE.",
            hint=hint,
            id="generation.W001",
        )
    ]
