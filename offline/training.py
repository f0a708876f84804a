"""What the offline trainers share: their command line, the setup of torch, the progress log, and
the record of a run (steps, seed, threads, time) each saves beside its weights."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import torch

CPU = torch.device("cpu")

# The options the trainers share: how each is read, and its help where it has one. Each trainer
# gives its own defaults (see ``arguments``).
OPTIONS = {
    "out": {"type": Path},
    "steps": {"type": int},
    "batch_size": {"type": int},
    "pool": {"type": int},
    "lr": {"type": float},
    "seed": {"type": int},
    # Same seed and thread count, same weights. More threads only pay on a quiet machine.
    "threads": {"type": int},
    "save_every": {"type": int},
    "eval": {"type": int, "help": "held-out captions to grade"},
    "device": {
        "type": torch.device,
        "help": "where to train: cpu, or cuda on a machine with a GPU (the same recipe, in "
        "bfloat16 autocast there)",
    },
}
# The shared options a run's record keeps, those its command has; where and how often it saves,
# how much it grades, and a trainer's own options (the autoencoder's --crop) are not kept.
RECORDED = ("steps", "batch_size", "pool", "lr", "seed", "threads", "device", "decoder_only")


def arguments(doc: str, **defaults) -> argparse.ArgumentParser:
    """A trainer's parser, described by the first line of its docstring, with the shared options
    given; add its own to the returned parser (see ``add_options``)."""
    return add_options(argparse.ArgumentParser(description=doc.splitlines()[0]), **defaults)


def add_options(parser: argparse.ArgumentParser, **defaults) -> argparse.ArgumentParser:
    """Adds the shared options named, each with the trainer's default, in the order given, which
    is the order ``--help`` lists them in (each command keeps its own). ``resume`` names what
    ``--resume`` trains on from; ``decoder_only`` what training the decoder alone keeps as it is
    (read the command line with ``parse``, which checks it comes with ``--resume``)."""
    for name, default in defaults.items():
        if name == "resume":
            parser.add_argument(
                "--resume", action="store_true", help=f"train on from {default} in --out"
            )
        elif name == "decoder_only":
            parser.add_argument(
                "--decoder-only",
                action="store_true",
                help=f"with --resume: train the decoder alone, so that {default} stay as they are",
            )
        else:
            parser.add_argument("--" + name.replace("_", "-"), default=default, **OPTIONS[name])
    return parser


def parse(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """The command line, and the one rule between options: ``--decoder-only`` keeps the encoding
    half of a trained model, so it needs one (``--resume``)."""
    args = parser.parse_args(argv)
    if vars(args).get("decoder_only") and not args.resume:
        parser.error("--decoder-only trains on from a trained model: add --resume")
    return args


def background(pictures: torch.Tensor) -> torch.Tensor:
    """Each picture's flat background colour, [N, C, 1, 1], of pictures [N, C, H, W]: the colour
    at three of its four corners at least (no shape covers two), so their median (per channel,
    the three agree)."""
    corners = pictures[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    return corners.median(dim=-1).values[:, :, None, None]


def _json(value):
    """An option's value as the record keeps it: a torch.device is not JSON, its name is."""
    return str(value) if isinstance(value, torch.device) else value


class Run:
    """The setup of torch for a run (threads, seed), then wall-clock and CPU time since it
    started, running means of the losses printed every ``every`` steps, and the record saved with
    the weights as the ``part`` entry of ``<out>/training.json``, which a ``--resume`` continues.
    """

    def __init__(
        self,
        args: argparse.Namespace,
        part: str | None = None,
        every: int = 100,
        flush_denormal: bool = True,
    ):
        torch.set_num_threads(args.threads)
        if flush_denormal:
            # Subnormal floats (attention weights near zero, once a model has learnt to look
            # away) take the CPU's slow path: the GPT's steps went from 0.4 s to 2.2 s within
            # 200 steps.
            torch.set_flush_denormal(True)
        torch.manual_seed(args.seed)
        self.args, self.part, self.every = args, part, every
        self.device = vars(args).get("device") or CPU
        # The run a --resume continues, kept in this run's record.
        self.resumed_from = read_record(args.out, part) if vars(args).get("resume") else None
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()
        self._sums: dict[str, float] = {}
        self._n = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def cpu_elapsed(self) -> float:
        return time.process_time() - self.cpu0

    def say(self, text: str) -> None:
        print(f"[{self.elapsed():6.0f}s] {text}", flush=True)

    def step(self, step: int, loss: float, **parts: float) -> None:
        """Counts a step and its loss; ``parts`` are the losses it adds up, printed beside it."""
        for name, value in {"loss": loss, **parts}.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._n += 1
        if step % self.every == 0 or step == self.args.steps:
            means = " ".join(f"{k} {v / self._n:.4f}" for k, v in self._sums.items())
            self.say(f"step {step}/{self.args.steps} {means}")
            self._sums, self._n = {}, 0

    def record(self, **extra) -> dict:
        """What went into the run and what it cost, for the saved config. The options come in
        the order of the command line, as argparse sets them."""
        return {
            **{k: _json(v) for k, v in vars(self.args).items() if k in RECORDED},
            **extra,
            "bfloat16": uses_bfloat16(self.device),
            "seconds": round(self.elapsed()),
            "cpu_seconds": round(self.cpu_elapsed()),
        }

    def save_record(self, entry: dict) -> None:
        """Writes ``entry`` (from ``record``) as this run's part of ``<out>/training.json``."""
        update_record(self.args.out, self.part, entry, resumed_from=self.resumed_from)


def has_fast_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX). Without them
    autocast emulates it: a 3×3 convolution took 92 times as long as in float32, a GPT step 5
    times, on this project's AVX2 machine (../shared/offline-findings.md)."""
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    return torch.cpu._is_avx512_bf16_supported() or amx()


def uses_bfloat16(device: torch.device = CPU) -> bool:
    """Whether :func:`low_precision` computes in bfloat16 on ``device``: on a GPU always, on a
    CPU where it is native."""
    return device.type == "cuda" or has_fast_bfloat16()


def low_precision(device: torch.device = CPU):
    """bfloat16 autocast on ``device`` where it is fast (``uses_bfloat16``), else nothing
    (float32). A run's record says which (``Run.record``): the two give different weights."""
    if uses_bfloat16(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def one_cycle(params, lr: float, steps: int, weight_decay: float = 0.0):
    """AdamW with a one-cycle learning rate: a short warm-up, then a cosine fall to nothing."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    return opt, sched


def read_record(folder: Path, key: str) -> dict:
    """The ``key`` entry of ``<folder>/training.json``: the run a ``--resume`` continues."""
    return json.loads((Path(folder) / "training.json").read_text())[key]


def update_record(folder: Path, key: str, entry: dict, resumed_from: dict | None = None) -> None:
    """Writes ``entry`` as ``key`` in ``<folder>/training.json``, beside the other parts' runs;
    a resumed run keeps the run it continued under ``resumed_from``."""
    path = Path(folder) / "training.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    record[key] = {**entry, "resumed_from": resumed_from} if resumed_from else entry
    path.write_text(json.dumps(record, indent=2) + "\n")
