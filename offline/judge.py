"""The judge: a small CNN that reads a world picture back into labels (colour, shape, size and
place of each object, how many there are, background, style). It only grades the generators.

Object 1 is the only shape, or the top/left one of two; object 2 the bottom/right one (see
``offline.world.labels``). Weights live in ``offline/weights/judge/`` as ``model.safetensors``
plus ``config.json``; ``python -m offline.train_judge`` makes them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from offline import world

WEIGHTS = Path(__file__).resolve().parent / "weights" / "judge"


class Judge(nn.Module):
    def __init__(self, widths=(16, 24, 48, 96), hidden=128, heads=None):
        super().__init__()
        self.config = {
            "widths": list(widths),
            "hidden": hidden,
            "heads": dict(heads or world.HEADS),
        }
        layers, c_in = [], 3
        for n, c_out in enumerate(widths):
            # The first layer halves 64→32 by stride; the others by max-pooling, down to 4×4,
            # which keeps where things are (a global pool would lose left from right).
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=2 if n == 0 else 1, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            if n > 0:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.trunk = nn.Sequential(
            nn.Flatten(), nn.Linear(c_in * 16, hidden), nn.ReLU(inplace=True)
        )
        self.heads = nn.ModuleDict(
            {k: nn.Linear(hidden, n) for k, n in self.config["heads"].items()}
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x``: float images in [0, 1], N×3×64×64. Returns logits per head."""
        h = self.trunk(self.features(x - 0.5))
        return {k: head(h) for k, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, images: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Class indices per head for uint8 images N×64×64×3 (what ``world.batches`` yields)."""
        self.eval()
        out: dict[str, list] = {k: [] for k in self.heads}
        for i in range(0, len(images), batch_size):
            logits = self(to_tensor(images[i : i + batch_size]))
            for k, v in logits.items():
                out[k].append(v.argmax(1).numpy())
        return {k: np.concatenate(v) for k, v in out.items()}


def to_tensor(images: np.ndarray) -> torch.Tensor:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (64, 64, 3):
        raise ValueError(f"expected uint8 images N×64×64×3, got {images.dtype} {images.shape}")
    if not images.flags.writeable:  # np.asarray(PIL image) is read-only; torch warns on those
        images = images.copy()
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)


def loss(logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """The sum over heads of cross-entropy; -1 targets (no second object) are skipped."""
    total = 0.0
    for k, v in logits.items():
        t = targets[k]
        if (t >= 0).any():
            total = total + F.cross_entropy(v, t, ignore_index=-1)
    return total


def accuracy(pred: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
    """Per head, the share of labelled pictures (label ≥ 0) it got right."""
    out = {}
    for k, p in pred.items():
        known = labels[k] >= 0
        if known.any():
            out[k] = float((p[known] == labels[k][known]).mean())
    return out


def save(model: Judge, folder: Path, extra: dict | None = None) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / "model.safetensors")
    config = {**model.config, "world": world_signature(), **(extra or {})}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def load(folder: Path = WEIGHTS) -> Judge:
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    if config.get("world") != world_signature():
        # A judge trained on another vocabulary would grade with shuffled class names.
        raise ValueError(f"{folder} was trained on a different world: retrain the judge")
    model = Judge(config["widths"], config["hidden"], config["heads"])
    model.load_state_dict(load_file(folder / "model.safetensors"))
    return model.eval()


def world_signature() -> dict[str, list[str]]:
    """The class names of every head, stored beside the weights and checked on load."""
    return {
        "colours": list(world.COLOUR_NAMES),
        "shapes": list(world.SHAPES),
        "sizes": list(world.SIZES),
        "places": list(world.PLACES),
        "styles": list(world.STYLES),
    }
