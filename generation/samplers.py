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


def make_scheduler(name, base_config):
    """A fresh scheduler of the named kind that keeps the model's own schedule (betas, spacing)."""
    import diffusers

    class_name, overrides = SAMPLERS[name]
    return getattr(diffusers, class_name).from_config(base_config, **overrides)
