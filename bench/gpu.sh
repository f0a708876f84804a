#!/usr/bin/env bash
# Generation throughput on a GPU, in one run of under 10 minutes from a fresh checkout on a bare
# machine: the raw forward (the diffusers pipeline alone), the engine (generate_batch) and the
# whole worker (run_render: claims, PNGs, storage, events) at batch 1, 8 and 32, eager and
# compiled (PARTYHUB_COMPILE=1), with the tiny decoder (TAESD in the VAE's place) and the full
# VAE, on SD-Turbo's architecture with random weights (generation/random_weights.py) at 512x512,
# one step, float16; then where the worker's own time goes (bench/overhead.py). It prints ONE
# JSON on stdout (progress goes to stderr) and, where $OUT is set, writes it and the logs there.
#
# On the lent GPU machine (docs/performance.md, "On a GPU"), after `bash bench/gpu_wheels.sh`
# here, with the device tool's run, carry [".whl"], timeout_s 600:
#
#     bash bench/gpu.sh
#
# The wheels in .whl/ are installed into /tmp/site first when the Python it uses lacks Django.
# Without a GPU, a shrunken run of the same flow on the CPU (256x256, the model's smallest; batch
# 1 and 2; one repeat; float32), about 4 minutes on 2 cores:
#
#     GPU_BENCH_SHRINK=1 bash bench/gpu.sh
#
# Time budget: GPU_BENCH_BUDGET seconds (480) from the start. A case that would start past it is
# skipped, a case running at it skips the batch sizes it has not begun (--deadline), and one still
# running GPU_BENCH_GRACE seconds (60) later is stopped and keeps the sizes it finished: the JSON
# says which. Compiles are the risk: torch.compile's max-autotune on each new batch shape. The
# cases run in order of importance: eager tiny, eager full, the overhead, compiled tiny,
# compiled full (its UNet kernels come from the inductor cache the compiled tiny case filled).
# Other settings: GPU_BENCH_SIZE, GPU_BENCH_BATCHES ("1 8 32"), GPU_BENCH_REPEATS (3),
# GPU_BENCH_MODELS_DIR (where the random weights are built once and reused), PYTHON.
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
BUDGET=${GPU_BENCH_BUDGET:-480}
GRACE=${GPU_BENCH_GRACE:-60}
END=$((START + BUDGET))
WORK=$(mktemp -d /tmp/partyhub-gpu-bench.XXXXXX)
say() { echo "[$(($(date +%s) - START))s] $*" >&2; }

if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -x .venv/bin/python ] && .venv/bin/python -c 'import django' 2>/dev/null; then
    PY=.venv/bin/python
else
    PY=python3
fi
if ! "$PY" -c 'import django' 2>/dev/null && compgen -G '.whl/*.whl' >/dev/null; then
    say "installing $(ls .whl/*.whl | wc -l) wheels from .whl into /tmp/site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log" >&2; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

if [ "${GPU_BENCH_SHRINK:-0}" = 1 ]; then
    export PARTYHUB_DEVICE=cpu PARTYHUB_DTYPE=float32
    SIZE=${GPU_BENCH_SIZE:-256} BATCHES=${GPU_BENCH_BATCHES:-"1 2"} REPEATS=${GPU_BENCH_REPEATS:-1}
else
    export PARTYHUB_DEVICE=cuda PARTYHUB_DTYPE=float16
    SIZE=${GPU_BENCH_SIZE:-512} BATCHES=${GPU_BENCH_BATCHES:-"1 8 32"} REPEATS=${GPU_BENCH_REPEATS:-3}
fi
OVERHEAD_BATCH=${BATCHES##* }  # the largest
export PARTYHUB_MODELS_DIR=${GPU_BENCH_MODELS_DIR:-/tmp/partyhub-gpu-bench-models}
export PARTYHUB_VAR_DIR=$WORK/var
# CLIP scoring off: a model, whose time is the model's side (as bench/overhead.py has it); DEBUG
# off: it records every SQL statement, which production does not.
export PARTYHUB_CLIP_PRETRAINED=off DEBUG=0 PYTHONUNBUFFERED=1
MODEL=sd-turbo

"$PY" - "$WORK/meta.json" "$START" "$BUDGET" "${GPU_BENCH_SHRINK:-0}" "$SIZE" "$BATCHES" \
    "$REPEATS" "$MODEL" <<'PY' 2>>"$WORK/meta.log"
import json, os, platform, sys
from importlib import metadata

import torch

path, start, budget, shrink, size, batches, repeats, model = sys.argv[1:]
versions = {}
for name in ("torch", "diffusers", "transformers", "huggingface_hub", "pillow", "django"):
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        versions[name] = None
cuda = torch.cuda.is_available()
meta = {
    "bench": "bench/gpu.sh",
    "started_epoch": int(start),
    "budget_s": int(budget),
    "shrink": shrink == "1",
    "model": f"{model} (its architecture, random weights)",
    "size": int(size),
    "steps": 1,
    "batches": [int(b) for b in batches.split()],
    "repeats": int(repeats),
    "device": os.environ["PARTYHUB_DEVICE"],
    "dtype": os.environ["PARTYHUB_DTYPE"],
    "device_name": torch.cuda.get_device_name() if cuda else platform.processor(),
    "cuda_available": cuda,
    "cpu_count": os.cpu_count(),
    "python": platform.python_version(),
    "versions": versions,
    "clip_scoring": "off",
}
with open(path, "w") as f:
    json.dump(meta, f)
PY
[ -s "$WORK/meta.json" ] || { cat "$WORK/meta.log" >&2; exit 1; }

say "random weights for $MODEL and its TAESD under $PARTYHUB_MODELS_DIR"
"$PY" - "$MODEL" >"$WORK/prepare.log" 2>&1 <<'PY' || { cat "$WORK/prepare.log" >&2; exit 1; }
import sys

from generation.bench import use_settings

use_settings()
from generation import random_weights
from generation.presets import get_preset

preset = get_preset(sys.argv[1])
print(random_weights.ensure(preset), random_weights.ensure_tiny_decoder(preset))
PY

: >"$WORK/cases.txt"
run_case() {  # name, then the command; status and seconds go to cases.txt
    local name=$1 now started status rc
    shift
    now=$(date +%s)
    if [ "$now" -ge "$END" ]; then
        say "$name: skipped, past the time budget"
        printf '%s\tskipped: past the time budget\t0\n' "$name" >>"$WORK/cases.txt"
        return
    fi
    say "$name"
    started=$now
    timeout -k 10 $((END + GRACE - now)) "$@" >"$WORK/$name.log" 2>&1
    rc=$?
    case $rc in
        0) status=ok ;;
        124 | 137) status="stopped: still running $GRACE s past the time budget" ;;
        *) status="failed: exit $rc (see $name.log)"; tail -5 "$WORK/$name.log" >&2 ;;
    esac
    say "$name: $status"
    printf '%s\t%s\t%s\n' "$name" "$status" $(($(date +%s) - started)) >>"$WORK/cases.txt"
}
worker_case() {  # eager|compiled, tiny|full
    PARTYHUB_COMPILE=$([ "$1" = compiled ] && echo 1 || echo 0) run_case "worker-$1-$2" \
        "$PY" bench/worker.py --random-weights "$MODEL" --size "$SIZE" --steps 1 \
        --batches $BATCHES --repeats "$REPEATS" --decoder "$2" --deadline "$END" \
        --json "$WORK/worker-$1-$2.json"
}

worker_case eager tiny
worker_case eager full
run_case overhead "$PY" bench/overhead.py --size "$SIZE" --batches "$OVERHEAD_BATCH" \
    --repeats 5 --json "$WORK/overhead.json"
worker_case compiled tiny
worker_case compiled full

"$PY" bench/gpu_report.py "$WORK" >"$WORK/gpu_bench.json" || exit 1
if [ -n "${OUT:-}" ]; then
    cp "$WORK/gpu_bench.json" "$OUT/"
    tar -czf "$OUT/gpu_bench_logs.tar.gz" -C "$WORK" --exclude=var . 2>/dev/null
fi
say "done; work files in $WORK"
cat "$WORK/gpu_bench.json"
