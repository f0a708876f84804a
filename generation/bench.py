"""Generation throughput: the raw pipeline against the engine, per batch size, with no database.

    .venv/bin/python -m generation.bench [--batches 1 8 32] [--repeats 3] [--model offline]
        [--steps 1] [--size 128] [--json PATH] [--random-weights PRESET] [--decoder full|tiny]
        [--deadline EPOCH_SECONDS]

For each batch size B it measures, in one process, with the model loaded once:

- raw: the diffusers pipeline alone rendering B images in one call (denoising and VAE decode to
  PIL images), as a program that only wanted pictures would call it; for the autoregressive
  family, the model's own sampling of B images (`generation.autoregressive.generate_slots`),
  one after another as the worker draws them;
- engine: `generation.pipelines.generate_batch` for B slots, what the render job calls: the
  cached prompt embeddings, the mode's arguments, the progress callback and the decode checks.

Both are images per second over the median of `--repeats` timed runs, after one warm-up. The
engine needs the settings (device, dtype, models folder) and nothing else: no database, no
channel layer, no storage. bench/worker.py measures the whole worker around it. This is a
benchmark, not a test.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", "--batch", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="offline")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--size", type=int, default=128, help="width and height in pixels")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--random-weights",
        metavar="PRESET",
        help="build (or reuse) PRESET's real architecture with random weights under "
        "PARTYHUB_MODELS_DIR (generation/random_weights.py) and measure it as --model",
    )
    parser.add_argument(
        "--decoder",
        choices=("full", "tiny"),
        default="full",
        help="the final decode: the model's own VAE (full), or its TAESD in the VAE's place "
        "(tiny; PARTYHUB_MODELS_DIR/taesd, built with random weights by --random-weights)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        metavar="EPOCH_SECONDS",
        help="skip the batch sizes not started by this time (time.time()), saying so in --json",
    )
    parser.add_argument(
        "--overhead",
        action="store_true",
        help="the whole worker's own cost per image on a zero-cost model (bench/overhead.py)",
    )
    return parser.parse_args(argv)


def use_settings():
    """The project's settings for the device, dtype and models folder; nothing they name (the
    database, the broker) is opened."""
    for name in ("DATABASE_URL", "REDIS_URL", "PARTYHUB_RENDER_WORKER"):
        os.environ.pop(name, None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("PARTYHUB_VAR_DIR", tempfile.mkdtemp(prefix="partyhub-bench-"))
    os.environ.setdefault("PARTYHUB_MODELS_DIR", str(REPO / "var" / "models"))


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


def measure_engine(preset, params, batch, repeats):
    from generation.modes import slots_for
    from generation.pipelines import generate_batch

    prompts = [f"a lighthouse on a cliff, take {i}" for i in range(batch)]
    slots = [
        slot for i, text in enumerate(prompts) for slot in slots_for(text, params | {"seed": i})
    ]
    return batch / timed(
        lambda: generate_batch(preset, slots, on_step=lambda *a: None, should_stop=lambda: False),
        repeats,
    )


def use_decoder(preset, decoder):
    """--decoder tiny: the preset's TAESD decodes the final images in the VAE's place, for the raw
    pipeline and the engine alike (both use the one loaded pipeline). TAESD decodes the sampler's
    latents as they are (its scaling factor is 1) to [-1, 1], as the VAE does."""
    if decoder == "full":
        return
    from generation import taesd
    from generation.pipelines import get_pipeline

    tiny = taesd.tiny_decoder(preset)  # loaded as the previews' and PARTYHUB_FINAL_DECODER's
    if tiny is None:
        sys.exit(f"model {preset.name!r} has no TAESD on disk for --decoder tiny")
    get_pipeline(preset).vae = tiny


def past(deadline):
    return deadline is not None and time.time() > deadline


def benchable_preset(args):
    """The preset `--model` names, or exit saying why it cannot be measured here."""
    from generation.presets import get_preset

    preset = get_preset(args.model)
    if preset is None or not preset.is_available():
        sys.exit(f"model {args.model!r} is not available here")
    if preset.family == "autoregressive" and args.batches != [1]:
        sys.exit("the worker does not batch token-by-token renders: use --batches 1")
    return preset


def resolved_params(args):
    from generation.params import resolve_params

    params = resolve_params(
        {"model": args.model, "steps": args.steps, "width": args.size, "height": args.size}
    )
    del params["seed"]  # each render picks its own
    return params


def device_name(device):
    import torch

    return torch.cuda.get_device_name() if device == "cuda" else platform.processor()


def prepared(args):
    """The preset to measure and its resolved params: its random weights built first where
    `--random-weights` asks, and its final decoder the one `--decoder` names."""
    if args.random_weights:
        from generation.random_weights import prepare_bench

        args.model = prepare_bench(args.random_weights)
    preset = benchable_preset(args)
    use_decoder(preset, args.decoder)
    return preset, resolved_params(args)


def run_header(args, params):
    """What a run's JSON says of itself before its rows: the model, the machine, the settings."""
    import torch
    from django.conf import settings

    return {
        "model": args.model,
        "params": params,
        "device": settings.PARTYHUB_DEVICE,
        "device_name": device_name(settings.PARTYHUB_DEVICE),
        "torch_threads": torch.get_num_threads(),
        "decoder": args.decoder,
        "compile": settings.PARTYHUB_COMPILE and settings.PARTYHUB_DEVICE == "cuda",
        "repeats": args.repeats,
    }


def write_json(path, result):
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
        print(f"wrote {path}")


def main(argv=None):
    args = parse_args(argv)
    if args.overhead:  # the whole worker needs the database, which the engine never imports
        argv = sys.argv[1:] if argv is None else argv
        sys.exit(subprocess.call([sys.executable, str(REPO / "bench" / "overhead.py"), *argv]))
    use_settings()
    preset, params = prepared(args)
    rows = []
    for batch in args.batches:
        if past(args.deadline):
            rows.append({"batch": batch, "skipped": "past --deadline"})
            print(f"batch {batch:>3}: skipped, past --deadline", flush=True)
            continue
        raw = measure_raw(preset, params, batch, args.repeats)
        engine = measure_engine(preset, params, batch, args.repeats)
        rows.append({"batch": batch, "raw_images_per_s": raw, "engine_images_per_s": engine})
        print(f"batch {batch:>3}: raw {raw:8.2f} img/s   engine {engine:8.2f} img/s", flush=True)
    print("\nbatch  raw img/s  engine img/s  engine/raw")
    for row in (row for row in rows if "skipped" not in row):
        print(
            f"{row['batch']:>5}  {row['raw_images_per_s']:9.2f}  {row['engine_images_per_s']:12.2f}"
            f"  {row['engine_images_per_s'] / row['raw_images_per_s']:10.2f}"
        )
    write_json(args.json, {**run_header(args, params), "rows": rows})


if __name__ == "__main__":
    main()
