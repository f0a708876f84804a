"""bench/gpu_report.py, which merges bench/gpu.sh's cases into one JSON: ratios, the issue's
targets and what the time budget skipped, on made-up case files (no model, no GPU)."""

import importlib.util
import json
from pathlib import Path

REPORT = Path(__file__).resolve().parents[2] / "bench" / "gpu_report.py"


def load_report():
    spec = importlib.util.spec_from_file_location("gpu_report", REPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(batch, raw, engine, worker):
    return {
        "batch": batch,
        "raw_images_per_s": raw,
        "engine_images_per_s": engine,
        "worker_images_per_s": worker,
        "seconds": 1.0,
    }


def test_merges_cases_checks_targets_and_lists_what_was_skipped(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"started_epoch": 0, "size": 512, "steps": 1}))
    (tmp_path / "cases.txt").write_text(
        "worker-eager-tiny\tok\t40\n"
        "worker-compiled-tiny\tstopped: still running 60 s past the time budget\t120\n"
        "overhead\tok\t5\n"
        "worker-compiled-full\tskipped: past the time budget\t0\n"
    )
    eager = {"compile": False, "rows": [row(1, 20, 19, 15), row(32, 200, 190, 170)]}
    compiled = {"compile": True, "rows": [row(32, 400, 380, 250), {"batch": 8, "skipped": "x"}]}
    (tmp_path / "worker-eager-tiny.json").write_text(json.dumps(eager))
    (tmp_path / "worker-compiled-tiny.json").write_text(json.dumps(compiled))
    (tmp_path / "worker-eager-tiny.log").write_text(
        "WARNING decoded images are NaN or flat; decoding again with the VAE in float32\n"
    )
    (tmp_path / "overhead.json").write_text(json.dumps({"rows": [{"batch": 32, "runs": [1]}]}))

    result = load_report().report(tmp_path)

    cases = {case["case"]: case for case in result["cases"]}
    eager_32 = cases["worker-eager-tiny"]["rows"][1]
    assert eager_32["worker_over_raw"] == 0.85 and eager_32["engine_over_raw"] == 0.95
    assert cases["worker-eager-tiny"]["float32_redecodes"] == 1
    compiled_case = cases["worker-compiled-tiny"]
    assert compiled_case["compile"] and compiled_case["rows"][1] == {"batch": 8, "skipped": "x"}
    assert cases["worker-compiled-full"]["rows"] == []
    checks = {check["case"]: check for check in result["targets"]}
    assert checks["worker-eager-tiny"]["worker_ge_150_images_per_s"]
    assert checks["worker-eager-tiny"]["worker_ge_0_8_raw"]
    assert checks["worker-compiled-tiny"]["worker_ge_150_images_per_s"]
    assert not checks["worker-compiled-tiny"]["worker_ge_0_8_raw"]  # 250 / 400
    assert result["skipped_or_stopped"] == ["worker-compiled-tiny", "worker-compiled-full"]
    assert result["overhead"]["rows"] == [{"batch": 32}]
