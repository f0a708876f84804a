"""Party latency: submit -> `render.done` at the client, with 1 and with many members connected.

For every (model, members) case this starts a real server in the embedded default mode (SQLite,
in-memory channel layer, the render worker inside the server process), creates a party over
HTTP, joins the members (each its own session), opens one WebSocket per member, warms up with one
render and then submits renders one after another. Each render is timed at the client from the
send of `prompt.submit` to the first and to the last member's `render.done`.

`overhead-probe` renders blank images in no time (the server runs with PARTYHUB_OVERHEAD_PROBE=1),
so for it submit -> done(all) is an upper bound on PartyHub's own overhead: the time from the model
finishing to `render.done` at every member. `offline` is the bundled tiny model on the CPU.

This is a benchmark, not a test:

    .venv/bin/python bench/latency.py [--renders 20] [--members 1 20]
        [--models overhead-probe offline] [--json PATH]

Kept in one piece (past 400 lines): a benchmark run by its path, whose server, clients, timing
and report are read together.
"""

import argparse
import asyncio
import datetime
import http.client
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websockets

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
HOST = "127.0.0.1"
STEPS = 4
START_TIMEOUT = 60  # seconds for migrate + runserver to answer
WARMUP_TIMEOUT = 600  # the first offline render may build the placeholder model
RENDER_TIMEOUT = 120


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=20, help="timed renders per case")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--models", nargs="+", default=["overhead-probe", "offline"])
    parser.add_argument("--steps", type=int, default=STEPS, help="the steps param of each render")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=REPO / "var" / "models",
        help="PARTYHUB_MODELS_DIR, shared by every case (the offline model is built here once)",
    )
    parser.add_argument("--keep", action="store_true", help="keep each case's var dir and log")
    args = parser.parse_args(argv)
    if args.renders < 1 or min(args.members) < 1:
        parser.error("--renders and --members must be at least 1")
    return args


# --- The server ------------------------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """`manage.py runserver` in the embedded default mode, in a fresh var dir."""

    def __init__(self, models_dir, keep=False):
        self.var_dir = Path(tempfile.mkdtemp(prefix="partyhub-bench-"))
        self.port = free_port()
        self.keep = keep
        self.env = {
            key: value
            for key, value in os.environ.items()
            # Production settings would switch to PostgreSQL, Redis and Celery workers.
            if key not in ("DATABASE_URL", "REDIS_URL", "PARTYHUB_RENDER_WORKER")
        }
        self.env.update(
            DEBUG="1",
            PARTYHUB_OVERHEAD_PROBE="1",
            PARTYHUB_VAR_DIR=str(self.var_dir),
            PARTYHUB_MODELS_DIR=str(models_dir),
        )
        self.process = None
        self.log = None

    @property
    def origin(self):
        return f"http://{HOST}:{self.port}"

    def start(self):
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput"],
            cwd=REPO,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.log = open(self.var_dir / "server.log", "wb")  # closed in stop()
        self.process = subprocess.Popen(
            [PYTHON, "manage.py", "runserver", f"{HOST}:{self.port}", "--noreload"],
            cwd=REPO,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.var_dir / 'server.log'}")
            try:
                status, _, _ = http_request(self.port, "GET", "/api/models")
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer within {START_TIMEOUT} s")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
        if self.keep:
            print(f"  kept {self.var_dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.var_dir, ignore_errors=True)


# --- HTTP: one session per member ------------------------------------------------------------


def http_request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


class Session:
    """A browser-like client: its own cookies (csrftoken, sessionid), CSRF header on POSTs."""

    def __init__(self, server):
        self.server = server
        self.cookies = {}

    def _remember(self, headers):
        for name, value in headers:
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key.strip()] = rest.split(";", 1)[0]

    def request(self, method, path, body=None):
        headers = {"Cookie": self.cookie_header()}
        if method == "POST":
            headers["Content-Type"] = "application/json"
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
        status, response_headers, data = http_request(self.server.port, method, path, body, headers)
        self._remember(response_headers)
        return status, json.loads(data) if data else None

    def get_csrf_cookie(self):
        # GET / sets the csrftoken cookie; only the cookie matters here, not the page.
        _, headers, _ = http_request(self.server.port, "GET", "/")
        self._remember(headers)
        if "csrftoken" not in self.cookies:
            raise RuntimeError("GET / did not set the csrftoken cookie")

    def post(self, path, body, expect):
        status, data = self.request("POST", path, body)
        if status != expect:
            raise RuntimeError(f"POST {path} -> {status} {data}")
        return data

    def cookie_header(self):
        return "; ".join(f"{key}={value}" for key, value in self.cookies.items())


# --- WebSocket clients -----------------------------------------------------------------------


# Frames a render sends to every member, in order; `started` is render.progress step 0 (sent
# just before the model is called), `denoised` the progress frame of its last denoising step.
STAGES = ("added", "queued", "started", "denoised", "done")


class Member:
    """One connected member; a reader task stamps every frame with its arrival time."""

    def __init__(self, session, code, name):
        self.session = session
        self.code = code
        self.name = name
        self.ws = None
        self.reader = None
        self.prompt_by_text = {}  # prompt.added: text -> prompt id
        self.render_prompt = {}  # render.queued: render id -> prompt id
        self.seen = {}  # (prompt id, stage) -> arrival time (perf_counter)
        self.changed = asyncio.Event()

    async def connect(self, since):
        server = self.session.server
        self.ws = await websockets.connect(
            f"ws://{HOST}:{server.port}/ws/parties/{self.code}/?since={since}",
            additional_headers={"Cookie": self.session.cookie_header(), "Origin": server.origin},
            max_size=None,
        )
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        async for raw in self.ws:
            now = time.perf_counter()
            frame = json.loads(raw)
            kind = frame["type"]
            if kind == "prompt.added":
                prompt = frame["prompt"]["id"]
                self.prompt_by_text[frame["prompt"]["text"]] = prompt
                self._stamp(prompt, "added", now)
            elif kind == "render.queued":
                self.render_prompt[frame["render"]["id"]] = frame["render"]["prompt"]
                self._stamp(frame["render"]["prompt"], "queued", now)
            elif kind == "render.progress":
                prompt = self.render_prompt.get(frame["render"])
                if frame["step"] == 0:
                    self._stamp(prompt, "started", now)
                elif frame["step"] == frame["steps"]:
                    self._stamp(prompt, "denoised", now)
            elif kind == "render.done":
                self._stamp(frame["prompt"], "done", now)
            elif kind in ("render.failed", "render.cancelled", "error"):
                raise RuntimeError(f"{self.name} got {frame}")
            self.changed.set()

    def _stamp(self, prompt, stage, now):
        self.seen.setdefault((prompt, stage), now)

    async def wait_for(self, predicate, timeout):
        async with asyncio.timeout(timeout):
            while not predicate():
                if self.reader.done():
                    self.reader.result()  # raises what the reader raised
                    raise RuntimeError(f"{self.name}'s socket closed")
                self.changed.clear()
                await self.changed.wait()

    async def close(self):
        await self.ws.close()
        self.reader.cancel()


async def render_once(members, text, params, timeout):
    """Submit one prompt as the host and wait until every member has its render.done.

    Returns the send time and, per stage, the first and the last member's arrival time.
    """
    host = members[0]
    t0 = time.perf_counter()
    await host.ws.send(json.dumps({"type": "prompt.submit", "text": text, "params": params}))
    await host.wait_for(lambda: text in host.prompt_by_text, timeout)
    prompt = host.prompt_by_text[text]
    for member in members:
        await member.wait_for(lambda m=member: (prompt, "done") in m.seen, timeout)
    arrivals = {}
    for stage in STAGES:
        times = [m.seen[(prompt, stage)] for m in members if (prompt, stage) in m.seen]
        if times:
            arrivals[stage] = (min(times), max(times))
    return t0, arrivals


async def run_case(server, model, n_members, renders, steps):
    host = Session(server)
    host.get_csrf_cookie()
    party = host.post("/api/parties", {"topic": "latency", "name": "host"}, 201)
    code = party["code"]
    sessions = [host]
    for i in range(1, n_members):
        guest = Session(server)
        guest.get_csrf_cookie()
        guest.post(f"/api/parties/{code}/join", {"name": f"guest {i}"}, 200)
        sessions.append(guest)
    _, snapshot = host.request("GET", f"/api/parties/{code}")

    members = []
    for i, session in enumerate(sessions):
        member = Member(session, code, f"member {i}")
        await member.connect(since=snapshot["last_seq"])
        members.append(member)

    params = {"model": model, "steps": steps}
    samples = {key: [] for key in SAMPLES}
    try:
        await render_once(members, "warm-up", params, WARMUP_TIMEOUT)
        for i in range(renders):
            t0, arrivals = await render_once(members, f"render {i}", params, RENDER_TIMEOUT)
            first = {stage: times[0] for stage, times in arrivals.items()}
            last = {stage: times[1] for stage, times in arrivals.items()}
            samples["submit_to_first"].append(first["done"] - t0)
            samples["submit_to_last"].append(last["done"] - t0)
            # Where the time goes: from one stage's first arrival to the next one's.
            samples["submit_to_queued"].append(first["queued"] - t0)
            samples["queued_to_started"].append(first["started"] - first["queued"])
            samples["start_to_last"].append(last["done"] - first["started"])
            if "denoised" in arrivals:
                samples["denoised_to_last"].append(last["done"] - first["denoised"])
            samples["done_spread"].append(last["done"] - first["done"])
    finally:
        for member in members:
            await member.close()
    return {key: [round(s * 1000, 2) for s in values] for key, values in samples.items()}


SAMPLES = {
    "submit_to_first": "submit -> render.done at the first member",
    "submit_to_last": "submit -> render.done at the last member",
    "submit_to_queued": "submit -> render.queued at the first member",
    "queued_to_started": "render.queued -> render.progress step 0 (first member each)",
    "start_to_last": "render.progress step 0 (first member) -> render.done (last member)",
    "denoised_to_last": "last denoising step's progress (first member) -> render.done (last)",
    "done_spread": "render.done at the first member -> at the last member",
}


# --- Reporting -------------------------------------------------------------------------------


def p95(values):
    """Nearest-rank 95th percentile: of 20 samples, the 19th smallest."""
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def summary(values):
    if not values:
        return None
    return {"median": round(statistics.median(values), 1), "p95": round(p95(values), 1)}


def machine():
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0]
        memory_gib = round(int(meminfo.split()[1]) / 2**20, 1)
    except OSError:
        memory_gib = None
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def _table(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for j, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def print_table(results, steps):
    print()
    print(f'params per render: {{"model": <model>, "steps": {steps}}}, the rest the preset\'s')
    print("times in ms measured at the client, median / p95 (nearest rank)")
    print()
    columns = {
        "submit_to_first": "submit->done first",
        "submit_to_last": "submit->done all",
        "start_to_last": "start->done all",
        "denoised_to_last": "denoised->done all",
    }
    rows = [("model", "members", "n", *columns.values())]
    for case in results:
        cells = []
        for key in columns:
            s = case["summary"][key]
            cells.append(f"{s['median']:.1f} / {s['p95']:.1f}" if s else "-")
        rows.append((case["model"], str(case["members"]), str(case["renders"]), *cells))
    _table(rows)
    print()
    print("where the time goes, medians in ms:")
    print()
    columns = {
        "submit_to_queued": "submit->queued",
        "queued_to_started": "queued->start",
        "start_to_last": "start->done all",
        "done_spread": "done first->last",
    }
    rows = [("model", "members", *columns.values())]
    for case in results:
        cells = [f"{case['summary'][key]['median']:.1f}" for key in columns]
        rows.append((case["model"], str(case["members"]), *cells))
    _table(rows)
    print()
    print(
        "overhead-probe renders in ~0 s, so its submit->done all bounds the time from the model\n"
        "finishing to render.done at every member. start = the first member's render.progress\n"
        "step 0, sent just before the model is called; denoised = the first member's progress\n"
        "frame of the last denoising step (the probe has none), after which come the VAE decode,\n"
        "the PNG, storage and the broadcast."
    )


def main(argv=None):
    args = parse_args(argv)
    args.models_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for model in args.models:
        for n_members in args.members:
            print(f"{model}, {n_members} member(s): starting a server", file=sys.stderr)
            server = Server(args.models_dir, keep=args.keep).start()
            try:
                samples = asyncio.run(run_case(server, model, n_members, args.renders, args.steps))
            finally:
                server.stop()
            results.append(
                {
                    "model": model,
                    "members": n_members,
                    "renders": args.renders,
                    "summary": {key: summary(values) for key, values in samples.items()},
                    "samples_ms": samples,
                }
            )
            print(f"  {results[-1]['summary']}", file=sys.stderr)
    print_table(results, args.steps)
    if args.json:
        document = {
            "benchmark": "bench/latency.py",
            "date": datetime.date.today().isoformat(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine(),
            "params": {"model": "<model>", "steps": args.steps},
            "percentile": "p95 is nearest-rank",
            "samples": SAMPLES,
            "cases": results,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
