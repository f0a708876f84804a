"""AUTOMATIC1111 sampler names, as people type them and as PNG readers expect them, mapped to
diffusers schedulers. The name a render used is written back into its PNG's `parameters`."""

SAMPLERS = {
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Euler": ("EulerDiscreteScheduler", {}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "DDIM": ("DDIMScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "LCM": ("LCMScheduler", {}),
}


# What a sampler sets beyond the model's schedule; never carried from one sampler to the next.
OVERRIDDEN = {key for _, overrides in SAMPLERS.values() for key in overrides}


def make_scheduler(name, base_config):
    """A fresh scheduler of the named kind that keeps the model's own schedule (betas, spacing).

    `base_config` is the pipeline's current scheduler's, which may be the last render's sampler:
    what any sampler overrides is dropped from it first, or Karras sigmas would stay on for an
    Euler render after a "DPM++ 2M Karras" one, and the same seed would draw another picture."""
    import diffusers

    class_name, overrides = SAMPLERS[name]
    schedule = {key: value for key, value in base_config.items() if key not in OVERRIDDEN}
    return getattr(diffusers, class_name).from_config(schedule, **overrides)
