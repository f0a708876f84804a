"""What the offline trainers share: their command line, the progress log, and the record of a run
(steps, seed, threads, time) each saves beside its weights."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def arguments(doc: str, out: Path, steps: int, batch_size: int, lr: float, threads: int = 1):
    """The options every trainer takes; add its own to the returned parser."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--seed", type=int, default=0)
    # Same seed and thread count, same weights. More threads only pay on a quiet machine.
    parser.add_argument("--threads", type=int, default=threads)
    return parser


class Run:
    """Wall-clock and CPU time since it started, a running mean of the loss printed every
    ``every`` steps, and the record saved with the weights."""

    def __init__(self, args: argparse.Namespace, every: int = 100):
        torch.set_num_threads(args.threads)
        # Subnormal floats (attention weights near zero, once a model has learnt to look away)
        # take the CPU's slow path: the GPT's steps went from 0.4 s to 2.2 s within 200 steps.
        torch.set_flush_denormal(True)
        torch.manual_seed(args.seed)
        self.args, self.every = args, every
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()
        self._sum, self._n = 0.0, 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def say(self, text: str) -> None:
        print(f"[{self.elapsed():6.0f}s] {text}", flush=True)

    def step(self, step: int, loss: float) -> None:
        self._sum, self._n = self._sum + loss, self._n + 1
        if step % self.every == 0 or step == self.args.steps:
            self.say(f"step {step}/{self.args.steps} loss {self._sum / self._n:.4f}")
            self._sum, self._n = 0.0, 0

    def record(self, **extra) -> dict:
        """What went into the run and what it cost, for the saved config."""
        fields = ("steps", "batch_size", "lr", "seed", "threads")
        return {
            **{k: getattr(self.args, k) for k in fields},
            **extra,
            "seconds": round(self.elapsed()),
            "cpu_seconds": round(time.process_time() - self.cpu0),
        }


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
