"""The judge's figures for a clip-guided model: ``python -m generation.evaluate_clip_guided``.

The offline judge (`offline.evaluate`) grades what the app's own optimiser
(generation/clip_guided.py) draws from the bundled folder for the held-out captions, as it grades
the offline diffusion and token models; it lives here because that optimiser is the app's, and
`offline` never imports `generation`. docs/models.md, "CLIP-guided", records the figures.
"""

import argparse
from pathlib import Path

import numpy as np

from generation import clip_guided
from generation.modes import Slot
from generation.presets import BUNDLED_WEIGHTS
from offline import evaluate


def render(folder, prompts, steps, batch):
    """uint8 [N, 64, 64, 3]: picture n for prompts[n] from seed n, `batch` optimised together."""
    model = clip_guided.load(folder, "cpu", "float32")
    params = {"mode": "txt2img", "width": 64, "height": 64, "steps": steps, "negative": ""}
    images = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        slots = [Slot(prompt, params, start + n) for n, prompt in enumerate(chunk)]
        done = clip_guided.generate_slots(model, slots, lambda *_: None, lambda: False)
        images += [np.asarray(image) for image in done]
    return np.stack(images)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--weights", type=Path, default=BUNDLED_WEIGHTS / "clip-guided")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--sheet", type=Path, help="also save the first 24 pictures here")
    args = parser.parse_args(argv)
    prompts = evaluate.heldout_captions(args.n)
    images = render(args.weights, prompts, args.steps, args.batch)
    evaluate.report(f"clip-guided, {args.steps} steps,", images, prompts, args)


if __name__ == "__main__":
    main()
