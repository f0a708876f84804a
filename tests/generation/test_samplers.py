"""Samplers: each render's scheduler is made afresh from the model's own schedule."""

import diffusers

from generation.samplers import SAMPLERS, make_scheduler

SCHEDULE = diffusers.EulerAncestralDiscreteScheduler(
    beta_schedule="scaled_linear", timestep_spacing="trailing"
).config


def test_no_sampler_inherits_what_the_last_one_set():
    """Euler after "DPM++ 2M Karras" is Euler as it is after any other sampler: the same
    sigmas, so the same seed draws the same picture whatever rendered before."""
    for name in SAMPLERS:
        after_karras = make_scheduler(name, make_scheduler("DPM++ 2M Karras", SCHEDULE).config)
        fresh = make_scheduler(name, SCHEDULE)
        assert dict(after_karras.config) == dict(fresh.config), name
        after_karras.set_timesteps(8)
        fresh.set_timesteps(8)
        assert after_karras.timesteps.tolist() == fresh.timesteps.tolist(), name


def test_the_model_schedule_is_kept():
    for name in SAMPLERS:
        config = make_scheduler(name, SCHEDULE).config
        assert (config.beta_schedule, config.timestep_spacing) == ("scaled_linear", "trailing")
