"""Generation throughput: the raw pipeline against the whole render worker, per batch size.

    .venv/bin/python bench/worker.py [--batches 1 8 32] [--repeats 3] [--model offline]
        [--steps 1] [--size 128] [--json PATH] [--random-weights PRESET] [--decoder full|tiny]
        [--deadline EPOCH_SECONDS]

For each batch size B it measures, in one process, with the model loaded once:

- raw: the pipeline alone, as `python -m generation.bench` measures it;
- engine: `generation.pipelines.generate_batch` alone, as `python -m generation.bench` measures
  it (the model's side of the worker);
- worker: `run_render` as a worker calls it, for `--repeats` batches of B compatible queued
  renders back to back: each call claims B (batching at PARTYHUB_MAX_BATCH = B) and renders
  them in one pass, and the worker's finisher thread encodes the PNGs with their metadata,
  stores them and announces each render while the next batch renders: what PartyHub adds
  around the model, overlapped as it is when a worker serves.

Raw and engine are images per second over the median of `--repeats` timed runs, the worker
over its `--repeats` batches; each after one warm-up. It runs
the embedded mode on its own temporary SQLite database and media folder. With `--overhead` it
measures instead what the worker spends around a model that costs nothing (bench/overhead.py).
This is a benchmark, not a test.
"""

import json
import os
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
    """Images per second through the worker as it serves: `repeats` batches queued at once and
    run back to back, each batch's images stored and recorded by the finisher's thread while
    the next batch renders, until the last render is `done`."""
    from partyhub.jobs.finisher import Finisher
    from partyhub.jobs.runner import run_render
    from partyhub.models import Render

    queue = batch_queuer(params, batch)
    finisher = Finisher()

    def run(batches):
        renders = [queue() for _ in range(batches)]
        start = time.perf_counter()
        for leaders in renders:
            run_render(leaders[0].pk, finisher)
        finisher.wait()
        elapsed = time.perf_counter() - start
        ids = [render.pk for leaders in renders for render in leaders]
        done = Render.objects.filter(pk__in=ids, status="done").count()
        if done != len(ids):
            raise RuntimeError(f"only {done} of {len(ids)} renders ended done")
        return batches * batch / elapsed

    run(1)  # warm-up
    return run(repeats)


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
