"""Generation throughput: the raw pipeline against the whole worker, per batch size.

    .venv/bin/python -m generation.bench [--batches 1 8 32] [--repeats 3] [--model offline]
        [--steps 1] [--size 512] [--json PATH]

For each batch size B it measures, in one process, with the model loaded once:

- raw: the diffusers pipeline alone rendering B images in one call (denoising and VAE decode to
  PIL images), as a program that only wanted pictures would call it; for the autoregressive
  family, the model's own sampling of B images (`generation.autoregressive.generate_slots`),
  one after another as the worker draws them;
- worker: `run_render` for one of B compatible queued renders, which claims all B (batching
  at PARTYHUB_MAX_BATCH = B), renders them in one pass, encodes the PNGs with their metadata,
  stores them and announces each render: what PartyHub adds around the model.

Both are images per second over the median of `--repeats` timed runs, after one warm-up. It runs
the embedded mode on its own temporary SQLite database and media folder. This is a benchmark,
not a test.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="offline")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--size", type=int, default=128, help="width and height in pixels")
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def setup_django():
    # A private embedded setup: nothing of a production database or broker is touched.
    var = Path(tempfile.mkdtemp(prefix="partyhub-bench-"))
    for name in ("DATABASE_URL", "REDIS_URL", "PARTYHUB_RENDER_WORKER"):
        os.environ.pop(name, None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partyhub.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ["PARTYHUB_VAR_DIR"] = str(var)
    os.environ["MEDIA_ROOT"] = str(var / "media")
    os.environ.setdefault("PARTYHUB_MODELS_DIR", str(REPO / "var" / "models"))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def timed(func, repeats):
    func()  # warm-up: first calls allocate, compile kernels and fill caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_raw(preset, params, batch, repeats):
    import torch
    from django.conf import settings

    from generation.pipelines import get_pipeline

    pipe = get_pipeline(preset)
    if preset.family == "autoregressive":
        from generation import autoregressive, modes

        prompt = "a lighthouse on a cliff at dusk"
        slots = modes.slots_for(prompt, params | {"seed": 0, "count": batch})
        return batch / timed(
            lambda: autoregressive.generate_slots(pipe, slots, lambda *a: None, lambda: False),
            repeats,
        )

    def run():
        generators = [
            torch.Generator(settings.PARTYHUB_DEVICE).manual_seed(seed) for seed in range(batch)
        ]
        pipe(
            prompt=["a lighthouse on a cliff at dusk"] * batch,
            width=params["width"],
            height=params["height"],
            num_inference_steps=params["steps"],
            guidance_scale=params["guidance"],
            generator=generators,
        )
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    return batch / timed(run, repeats)


def measure_worker(params, batch, repeats):
    from django.conf import settings

    from generation.render import run_render
    from partyhub.models import Party, Render

    settings.PARTYHUB_MAX_BATCH = batch
    party, host = Party.start(topic="lighthouses", session_key="bench" * 6, host_name="Bench")

    def run():
        renders = [
            party.submit_prompt(host, f"a lighthouse on a cliff, take {i}", params=params)[1]
            for i in range(batch)
        ]
        start = time.perf_counter()
        run_render(renders[0].pk)
        elapsed = time.perf_counter() - start
        done = Render.objects.filter(pk__in=[r.pk for r in renders], status="done").count()
        if done != batch:
            raise RuntimeError(f"only {done} of {batch} renders ended done")
        return elapsed

    run()  # warm-up
    return batch / statistics.median(run() for _ in range(repeats))


def main(argv=None):
    args = parse_args(argv)
    setup_django()
    import torch
    from django.conf import settings

    from generation.params import resolve_params
    from generation.presets import get_preset

    preset = get_preset(args.model)
    if preset is None or not preset.is_available():
        sys.exit(f"model {args.model!r} is not available here")
    if preset.family == "autoregressive" and args.batches != [1]:
        sys.exit("the worker does not batch token-by-token renders: use --batches 1")
    params = resolve_params(
        {"model": args.model, "steps": args.steps, "width": args.size, "height": args.size}
    )
    del params["seed"]  # each render picks its own
    device = settings.PARTYHUB_DEVICE
    rows = []
    for batch in args.batches:
        raw = measure_raw(preset, params, batch, args.repeats)
        worker = measure_worker(params, batch, args.repeats)
        rows.append({"batch": batch, "raw_images_per_s": raw, "worker_images_per_s": worker})
        print(f"batch {batch:>3}: raw {raw:8.2f} img/s   worker {worker:8.2f} img/s", flush=True)
    base = rows[0]["worker_images_per_s"]
    print("\nbatch  raw img/s  worker img/s  worker/raw  worker vs batch 1")
    for row in rows:
        print(
            f"{row['batch']:>5}  {row['raw_images_per_s']:9.2f}  {row['worker_images_per_s']:12.2f}"
            f"  {row['worker_images_per_s'] / row['raw_images_per_s']:10.2f}"
            f"  {row['worker_images_per_s'] / base:16.2f}"
        )
    result = {
        "model": args.model,
        "params": params,
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else platform.processor(),
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "rows": rows,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
