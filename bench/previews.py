"""What live previews cost a render: the offline model's renders timed without previews, with
previews decoded by its own autoencoder (before issue 18), and with the linear latent-colour map
it ships now (generation/previews.py).

    .venv/bin/python bench/previews.py [--renders 12] [--every-step]

Each render is the preset's defaults (128×128, 20 steps of Euler a, guidance 5) through the
engine (`generate_batch`), with the worker's throttle: a preview at most every
PROGRESS_INTERVAL seconds, none after the last step (partyhub/jobs/watch.py). `--every-step`
decodes one after every step instead, the most a preview can cost. The three kinds take turns,
render by render, so the machine's noise falls on all of them alike; the medians are printed
with each one's ratio to the render without previews. A benchmark, not a test.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=12, help="renders of each kind")
    parser.add_argument("--every-step", action="store_true")
    args = parser.parse_args(argv)
    import django

    django.setup()  # for the worker's throttle; nothing here touches the database

    from generation import previews
    from generation.modes import slots_for
    from generation.params import resolve_params
    from generation.pipelines import generate_batch, get_pipeline
    from generation.presets import get_preset
    from partyhub.jobs.watch import PROGRESS_INTERVAL

    preset = get_preset("offline")
    vae = get_pipeline(preset).vae
    decoders = {
        "none": None,
        "autoencoder": previews.OwnAutoencoder(vae),
        "latent colours": previews.LatentColours.beside(vae),
    }
    interval = 0 if args.every_step else PROGRESS_INTERVAL

    def render(decoder, seed):
        slots = slots_for("a small red star above a blue square", resolve_params({"seed": seed}))
        last = [0.0]

        def on_step(step, steps, latents=None):
            now = time.monotonic()
            if decoder is None or step >= steps or now - last[0] < interval:
                return
            last[0] = now
            previews.data_urls(decoder, latents[:1])

        start = time.perf_counter()
        generate_batch(preset, slots, on_step, lambda: False)
        return time.perf_counter() - start

    for decoder in decoders.values():
        render(decoder, 0)  # warm-up
    times = {name: [] for name in decoders}
    for seed in range(args.renders):
        for name, decoder in decoders.items():
            times[name].append(render(decoder, seed))
    base = statistics.median(times["none"])
    print(f"previews {'after every step' if args.every_step else f'every {interval} s'}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:>15}: {median * 1000:7.1f} ms a render, {median / base:5.2f} x none")


if __name__ == "__main__":
    main()
