"""What the render worker spends around the model, per image, with a model that costs nothing.

    .venv/bin/python -m generation.bench --overhead --size 512 --batch 32 [--repeats 5]
        [--json PATH]
    (the same as .venv/bin/python bench/overhead.py ..., or bench/worker.py --overhead ...)

It runs the whole worker as bench/worker.py does (the embedded mode on a temporary SQLite
database and media folder, `run_render` claiming B compatible queued renders at
PARTYHUB_MAX_BATCH = B), on the `overhead-pictures` probe: its "model" only copies cached
pictures with real renders' content out as a decoded batch (generation/probe_pictures.py says
why blank ones would lie), and everything after it runs as for a real render: the checks and
conversion to PIL images, the PNG encode with its metadata, the storage writes, the claims and
leases, `Render.complete` with its events, and every broadcast. CLIP scoring is off: it is a
model, whose time belongs to the model's side, as on a GPU.

Per image, medians of `--repeats` runs after one warm-up:

- worker_thread_ms_per_image: wall-clock time the rendering thread (the one that calls
  `run_render(id, finisher)`, as a Celery worker's does) spends
  in it, less the model's call, until it has handed the batch to the finisher's thread. Waiting
  counts: while this thread waits, no next batch starts, and a GPU would idle.
  worker_thread_cpu_ms_per_image is that thread's own CPU (time.thread_time) outside the model.
- worker_cpu_ms_per_image: all CPU of the worker's process, every thread, and of its child
  processes (live ones through psutil, ended ones through RUSAGE_CHILDREN), from the call until
  every render of the batch is `done` (the finisher's work and the PNG pool's count), less the
  model's CPU. SQLite runs in the process, so its work counts; with PostgreSQL and Redis the
  servers' own CPU would not. Submitting the renders (the web side's work) is outside the window.
- back_to_back_images_per_s: `--repeats` batches queued at once and run back to back as a worker
  serves them, each finished beside the next one's claim, until the last render is `done`.
- stages: wall and CPU time inside named functions, summed over all threads (the PNG encodes
  run in a pool), per image; they overlap (complete_batch holds every complete).

The channel layer is the in-memory one, with no one listening: a broadcast costs what the
worker spends to send it, not the fan-out. This is a benchmark, not a test.
"""

import functools
import os
import resource
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation.bench import parse_args, write_json  # noqa: E402

MODEL = "overhead-pictures"


class Spans:
    """Wall and CPU seconds spent inside wrapped functions, whatever thread runs them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.totals = defaultdict(lambda: [0.0, 0.0, 0])

    def wrap(self, owner, name, label):
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                with self.lock:
                    total = self.totals[label]
                    total[0] += time.perf_counter() - wall
                    total[1] += time.thread_time() - cpu
                    total[2] += 1

        setattr(owner, name, timed)

    def __getitem__(self, label):
        return self.totals.get(label, [0.0, 0.0, 0])


def instrument(spans):
    """Wraps what the worker calls, where it looks it up (module attributes, class methods)."""
    from core import broadcast
    from generation import decoding, pngmeta, probe_pictures
    from partyhub.jobs import runner, store, watch
    from partyhub.models import Render

    spans.wrap(probe_pictures, "decoded", "model")
    spans.wrap(decoding, "looks_valid", "decode_checks")
    spans.wrap(decoding, "to_pil", "to_pil")
    spans.wrap(Render, "claim", "claim")
    spans.wrap(Render, "claim_companions", "claim")
    spans.wrap(watch.ClaimWatch, "__init__", "claim_watch")
    spans.wrap(watch.ClaimWatch, "poll", "claim_watch")
    spans.wrap(runner, "_stored", "wait_for_files")
    spans.wrap(runner, "_complete_all", "complete_batch")
    spans.wrap(pngmeta, "png_bytes", "png_encode")
    spans.wrap(store, "_save", "storage_write")
    spans.wrap(Render, "complete", "complete")
    spans.wrap(broadcast, "group_send", "broadcast")
    spans.wrap(watch, "group_send", "broadcast")


def cpu_seconds():
    """User and system CPU of this process and of its children, live and ended."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    try:
        import psutil  # not a dependency of PartyHub's: where it is missing, so are live children
    except ImportError:
        return total
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue  # it ended: RUSAGE_CHILDREN has it once it is reaped
        total += times.user + times.system
    return total


def measure(params, batch, repeats, spans):
    from django.core.files.storage import default_storage
    from worker import batch_queuer

    from partyhub.jobs.finisher import Finisher
    from partyhub.jobs.runner import run_render
    from partyhub.models import Image, Render

    queue = batch_queuer(params, batch)
    finisher = Finisher()  # as the embedded worker and a Celery worker each hold one

    def run():
        renders = queue()
        ids = [render.pk for render in renders]
        spans.reset()
        cpu, wall, thread = cpu_seconds(), time.perf_counter(), time.thread_time()
        run_render(ids[0], finisher)
        thread_wall, thread_cpu = time.perf_counter() - wall, time.thread_time() - thread
        finisher.wait()
        total_wall, total_cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        if Render.objects.filter(pk__in=ids, status="done").count() < batch:
            raise RuntimeError("a render of the batch did not end done")
        model_wall, model_cpu, _ = spans["model"]
        files = Image.objects.filter(render_id__in=ids).values_list("file", flat=True)
        return {
            "images_per_s": batch / total_wall,
            "worker_thread_ms_per_image": 1000 * (thread_wall - model_wall) / batch,
            "worker_thread_cpu_ms_per_image": 1000 * (thread_cpu - model_cpu) / batch,
            "worker_cpu_ms_per_image": 1000 * (total_cpu - model_cpu) / batch,
            "model_ms_per_image": 1000 * model_wall / batch,
            "png_kb_per_image": sum(default_storage.size(f) for f in files) / 1024 / batch,
            "stages": {
                label: {"wall_ms": 1000 * w / batch, "cpu_ms": 1000 * c / batch, "calls": n}
                for label, (w, c, n) in sorted(spans.totals.items())
            },
        }

    def back_to_back(batches):
        """Images per second with `batches` batches queued at once, run as a worker serves them:
        each batch finished beside the next one's claim (here the CPU, not a model, bounds it)."""
        leaders = [queue()[0].pk for _ in range(batches)]
        start = time.perf_counter()
        for leader in leaders:
            run_render(leader, finisher)
        finisher.wait()
        return batch * batches / (time.perf_counter() - start)

    run()  # warm-up: builds the probe's pictures, fills caches
    runs = [run() for _ in range(repeats)]
    result = {key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "stages"}
    result["stages"] = {
        label: {
            key: statistics.median(r["stages"].get(label, {}).get(key, 0) for r in runs)
            for key in ("wall_ms", "cpu_ms", "calls")
        }
        for label in runs[0]["stages"]
    }
    result["back_to_back_images_per_s"] = back_to_back(repeats)
    result["runs"] = runs
    return result


def main(argv=None):
    args = parse_args(argv)
    os.environ["PARTYHUB_OVERHEAD_PROBE"] = "1"
    os.environ["PARTYHUB_CLIP_PRETRAINED"] = "off"  # a model; see the docstring
    os.environ["DEBUG"] = "0"  # DEBUG records every SQL statement, which production does not
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from worker import setup_django

    setup_django()
    from generation.params import resolve_params

    params = resolve_params({"model": MODEL, "steps": 1, "width": args.size, "height": args.size})
    del params["seed"]  # each render picks its own
    spans = Spans()
    instrument(spans)
    rows = []
    for batch in args.batches:
        row = {"batch": batch, **measure(params, batch, args.repeats, spans)}
        rows.append(row)
        print(
            f"batch {batch:>3} at {args.size}x{args.size}: {row['images_per_s']:7.1f} img/s  "
            f"rendering thread {row['worker_thread_ms_per_image']:6.2f} ms/img "
            f"(its CPU {row['worker_thread_cpu_ms_per_image']:.2f})  "
            f"all CPU {row['worker_cpu_ms_per_image']:6.2f} ms/img  "
            f"PNG {row['png_kb_per_image']:.0f} KB  "
            f"back to back {row['back_to_back_images_per_s']:.1f} img/s",
            flush=True,
        )
        for label, stage in row["stages"].items():
            print(
                f"    {label:<14} wall {stage['wall_ms']:7.2f} ms/img   "
                f"cpu {stage['cpu_ms']:7.2f} ms/img   calls {stage['calls']:.0f}"
            )
    summary = {k: v for k, v in rows[-1].items() if k not in ("stages", "runs", "batch")}
    write_json(
        args.json,
        {
            "model": MODEL,
            "params": params,
            "repeats": args.repeats,
            "cpu_count": os.cpu_count(),
            **summary,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
