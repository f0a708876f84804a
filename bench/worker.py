"""Generation throughput: the raw pipeline against the whole render worker, per batch size.

    .venv/bin/python bench/worker.py [--batches 1 8 32] [--repeats 3] [--model offline]
        [--steps 1] [--size 128] [--json PATH] [--random-weights PRESET] [--decoder full|tiny]
        [--deadline EPOCH_SECONDS]

For each batch size B it measures, in one process, with the model loaded once:

- raw: the pipeline alone, as `python -m generation.bench` measures it;
- engine: `generation.pipelines.generate_batch` alone, as `python -m generation.bench` measures
  it (the model's side of the worker);
- worker: `run_render` for one of B compatible queued renders, which claims all B (batching
  at PARTYHUB_MAX_BATCH = B), renders them in one pass, encodes the PNGs with their metadata,
  stores them and announces each render: what PartyHub adds around the model.

All are images per second over the median of `--repeats` timed runs, after one warm-up. It runs
the embedded mode on its own temporary SQLite database and media folder. With `--overhead` it
measures instead what the worker spends around a model that costs nothing (bench/overhead.py).
This is a benchmark, not a test.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation.bench import (  # noqa: E402
    measure_engine,
    measure_raw,
    parse_args,
    past,
    prepared,
    run_header,
    use_settings,
    write_json,
)


def setup_django():
    # A private embedded setup: nothing of a production database or broker is touched.
    use_settings()
    os.environ["MEDIA_ROOT"] = str(Path(os.environ["PARTYHUB_VAR_DIR"]) / "media")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def batch_queuer(params, batch):
    """A function that queues `batch` compatible renders of one bench party and returns them,
    with PARTYHUB_MAX_BATCH at `batch`, so that one `run_render` claims them all."""
    from django.conf import settings

    from partyhub.models import Party

    settings.PARTYHUB_MAX_BATCH = batch
    party, host = Party.start(topic="lighthouses", session_key="bench" * 6, host_name="Bench")

    def queue():
        return [
            party.submit_prompt(host, f"a lighthouse on a cliff, take {i}", params=params)[1]
            for i in range(batch)
        ]

    return queue


def measure_worker(params, batch, repeats):
    from partyhub.jobs.runner import run_render
    from partyhub.models import Render

    queue = batch_queuer(params, batch)

    def run():
        renders = queue()
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
    if args.overhead:
        from overhead import main as overhead

        return overhead(argv)
    setup_django()
    preset, params = prepared(args)
    result = {**run_header(args, params), "rows": []}
    rows = result["rows"]
    for batch in args.batches:
        if past(args.deadline):
            rows.append({"batch": batch, "skipped": "past --deadline"})
            print(f"batch {batch:>3}: skipped, past --deadline", flush=True)
            continue
        start = time.perf_counter()
        raw = measure_raw(preset, params, batch, args.repeats)
        engine = measure_engine(preset, params, batch, args.repeats)
        worker = measure_worker(params, batch, args.repeats)
        rows.append(
            {
                "batch": batch,
                "raw_images_per_s": raw,
                "engine_images_per_s": engine,
                "worker_images_per_s": worker,
                "seconds": time.perf_counter() - start,  # warm-ups (and compiles) included
            }
        )
        print(
            f"batch {batch:>3}: raw {raw:8.2f} img/s   engine {engine:8.2f} img/s   "
            f"worker {worker:8.2f} img/s",
            flush=True,
        )
        if args.json:  # after each batch size, so that a run stopped later keeps these
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2))
    measured = [row for row in rows if "skipped" not in row]
    print("\nbatch  raw img/s  engine img/s  worker img/s  worker/raw  worker vs batch 1")
    for row in measured:
        print(
            f"{row['batch']:>5}  {row['raw_images_per_s']:9.2f}  {row['engine_images_per_s']:12.2f}"
            f"  {row['worker_images_per_s']:12.2f}"
            f"  {row['worker_images_per_s'] / row['raw_images_per_s']:10.2f}"
            f"  {row['worker_images_per_s'] / measured[0]['worker_images_per_s']:16.2f}"
        )
    write_json(args.json, result)


if __name__ == "__main__":
    main()
