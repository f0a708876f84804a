from django.conf import settings
from django.core.checks import Error, register


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
