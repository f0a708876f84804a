"""A sweep: one prompt drawn across several styles, artists, techniques, periods or modifiers, or
across seeds, guidance or steps, as a labelled grid (AUTOMATIC1111's X/Y plot; the "same
everyday object in the style of different artists" exercise).

Each cell is a prompt of its own with its own render, queued together so the worker renders them
in as few passes as their parameters allow; a cell is refined, starred and picked like any other
image. The sweep keeps the grid: its axes, and which prompt sits in which cell."""

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from core.errors import ApiError
from generation.params import MAX_SEED
from partyhub.models.prompt import Prompt, clean_client_id, one_per_client_id, repeat_of

MAX_CELLS = 16
# The palette's kinds: a value is words added to the prompt.
TEXT_AXES = ("style", "technique", "artist", "period", "modifier")
# A generation parameter: a value is the parameter's, the prompt's words stay.
PARAM_AXES = ("seed", "guidance", "steps")
AXES = TEXT_AXES + PARAM_AXES
# Each axis's values, as a sentence counts them ("3 artists × 2 seeds"): the replay's timeline
# says them so, and the room's composer too (`{% sweep_rules %}` carries them).
AXIS_PLURALS = {
    "style": "styles",
    "technique": "techniques",
    "artist": "artists",
    "period": "periods",
    "modifier": "modifiers",
    "seed": "seeds",
    "guidance": "guidance values",
    "steps": "step counts",
}
MAX_VALUE_CHARS = 60  # a palette entry's length


def cell_words(text, axis, value):
    """The prompt of a cell on a text axis, as AUTOMATIC1111's prompt matrix writes it: the
    value after the prompt ("by" before an artist's name)."""
    if axis == "artist":
        return f"{text}, by {value}"
    return f"{text}, {value}" if axis in TEXT_AXES else text


def clean_axis(name, axis):
    """An axis as a client sent it, `{"axis": kind, "values": [...]}`, checked; `invalid_sweep`
    naming what is wrong. Numbers are checked against the model's limits later, per cell."""
    if not isinstance(axis, dict) or set(axis) != {"axis", "values"}:
        raise ApiError("invalid_sweep", f'{name} must be {{"axis": ..., "values": [...]}}.')
    kind, values = axis["axis"], axis["values"]
    if not isinstance(kind, str) or kind not in AXES:
        raise ApiError("invalid_sweep", f"{name}.axis must be one of {list(AXES)}.")
    if not isinstance(values, list) or not 2 <= len(values) <= MAX_CELLS:
        raise ApiError("invalid_sweep", f"{name}.values must be a list of 2 to {MAX_CELLS}.")
    if kind in TEXT_AXES:
        values = [_text_value(name, value) for value in values]
        keys = [value.lower() for value in values]
    else:
        for value in values:
            _check_number(name, kind, value)
        keys = values
    if len(set(keys)) < len(keys):
        raise ApiError("invalid_sweep", f"{name}.values has the same value twice.")
    return {"axis": kind, "values": values}


def _text_value(name, value):
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= MAX_VALUE_CHARS:
        raise ApiError(
            "invalid_sweep", f"{name}.values must be texts of 1 to {MAX_VALUE_CHARS} characters."
        )
    if "\n" in value or "\r" in value:
        raise ApiError("invalid_sweep", f"{name}.values are one line each.")
    return value.strip()


def _check_number(name, kind, value):
    whole = isinstance(value, int) and not isinstance(value, bool)
    if kind == "guidance":
        if not (whole or isinstance(value, float)):
            raise ApiError("invalid_sweep", f"{name}.values must be numbers for guidance.")
    elif not whole:
        raise ApiError("invalid_sweep", f"{name}.values must be whole numbers for {kind}.")
    elif kind == "seed" and not 0 <= value <= MAX_SEED:
        raise ApiError("invalid_sweep", f"{name}.values: a seed is 0 to {MAX_SEED}.")


class Sweep(models.Model):
    party = models.ForeignKey("partyhub.Party", on_delete=models.CASCADE, related_name="sweeps")
    author = models.ForeignKey("partyhub.Member", on_delete=models.PROTECT, related_name="sweeps")
    text = models.CharField(max_length=1000)  # the prompt as written, before any cell's words
    x = models.JSONField()  # {"axis", "values"}
    y = models.JSONField(null=True, blank=True)
    # As a prompt's: a repeat of the message finds this sweep instead of making another.
    client_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [one_per_client_id("sweep")]

    def __str__(self):
        return f"sweep {self.pk}: {self.text}"

    def as_dict(self):
        cells = self.cells.order_by("cell_y", "cell_x").values_list("cell_x", "cell_y", "pk")
        return {
            "id": self.pk,
            "author": self.author_id,
            "text": self.text,
            "x": self.x,
            "y": self.y,
            "cells": [{"x": x, "y": y, "prompt": pk} for x, y, pk in cells],
            "client_id": self.client_id,
        }

    @classmethod
    def submit(cls, party, author, text, x, y=None, params=None, parent_id=None, **options):
        """One prompt drawn across the axes `x` (and `y`), at most 16 cells: a prompt and its
        render per cell, every cell with the same seed unless seed is an axis. Checked whole
        before anything is written: one cell out of the model's limits refuses the sweep.
        `options`: `charge` (the rate limit, called once for the sweep, once it is valid) and
        `client_id` (a repeat returns the earlier sweep and changes nothing)."""
        client_id = clean_client_id(options.get("client_id"))
        if repeat := repeat_of(cls.objects, author, client_id):
            return repeat
        author.check_may_add()
        if party.steered and not author.is_prompt_master:
            raise ApiError("steered", "The Prompt Master steers this party: only they sweep.", 403)
        x = clean_axis("x", x)
        y = None if y is None else clean_axis("y", y)
        if y is not None and y["axis"] == x["axis"]:
            raise ApiError("invalid_sweep", "x and y sweep the same thing.")
        size = len(x["values"]) * (len(y["values"]) if y else 1)
        if size > MAX_CELLS:
            raise ApiError(
                "sweep_too_large", f"A sweep has at most {MAX_CELLS} cells, not {size}.", 422
            )
        cells = cls._plan(party, text, x, y, params, parent_id)
        if options.get("charge") is not None:
            options["charge"]()
        try:
            with transaction.atomic():
                sweep = cls.objects.create(
                    party=party,
                    author=author,
                    text=cells[0]["base"],
                    x=x,
                    y=y,
                    client_id=client_id or "",
                )
                prompts = [
                    Prompt.objects.create(
                        party=party,
                        parent=cell["parent"],
                        author=author,
                        text=cell["text"],
                        params=cell["params"],
                        sweep=sweep,
                        cell_x=cell["x"],
                        cell_y=cell["y"],
                        source=None,
                    )
                    for cell in cells
                ]
                party.record("sweep.added", sweep=sweep.as_dict())
                for prompt in prompts:
                    party.record("prompt.added", prompt=prompt.as_dict())
                    prompt.queue_render()
        except IntegrityError:
            if repeat := repeat_of(
                cls.objects, author, client_id
            ):  # the same id at the same moment
                return repeat
            raise
        return sweep

    @classmethod
    def _plan(cls, party, text, x, y, params, parent_id):
        """Every cell's text and resolved params, checked as a prompt's are, or refused."""
        if isinstance(params, dict) and params.get("mode", "txt2img") != "txt2img":
            raise ApiError("invalid_sweep", "A sweep draws from text: mode must be txt2img.")
        base_text, _, base = party._clean_prompt(text, parent_id, params)
        requested = dict(params or {})
        requested.setdefault("seed", base["seed"])  # one seed for every cell: a fair comparison
        cells = []
        for row, y_value in enumerate(y["values"] if y else [None]):
            for column, x_value in enumerate(x["values"]):
                words, cell_params = base_text, dict(requested)
                for axis, value in ((x, x_value), (y, y_value)):
                    if axis is None:
                        continue
                    if axis["axis"] in PARAM_AXES:
                        cell_params[axis["axis"]] = value
                    else:
                        words = cell_words(words, axis["axis"], value)
                cell_text, parent, resolved = party._clean_prompt(words, parent_id, cell_params)
                cells.append(
                    {
                        "base": base_text,
                        "text": cell_text,
                        "parent": parent,
                        "params": resolved,
                        "x": column,
                        "y": row if y else None,
                    }
                )
        return cells
