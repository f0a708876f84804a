"""`{% sweep_rules %}`: what a sweep may be, for the browser, so it has one copy (partyhub/models/
sweep.py's). The party room and the stage put it before their scripts (`{% load sweeps %}`):
static/partyhub/sweeps.js labels a grid's values by it, and party-sweeps.js refuses a sweep that
breaks it before it is sent (the server still refuses it: `sweep_too_large`, `invalid_sweep`)."""

from django import template
from django.utils.html import json_script

from generation.params import MAX_SEED
from partyhub.models.sweep import AXES, AXIS_PLURALS, MAX_CELLS, MAX_VALUE_CHARS, TEXT_AXES

register = template.Library()


@register.simple_tag
def sweep_rules():
    """A `<script id="sweep-rules" type="application/json">` of {"axes": [...] in the composer's
    order, "text_axes": [the palette's kinds], "plurals": {axis: its values counted},
    "max_cells", "max_value_chars", "max_seed"}."""
    rules = {
        "axes": list(AXES),
        "text_axes": list(TEXT_AXES),
        "plurals": AXIS_PLURALS,
        "max_cells": MAX_CELLS,
        "max_value_chars": MAX_VALUE_CHARS,
        "max_seed": MAX_SEED,
    }
    return json_script(rules, "sweep-rules")
