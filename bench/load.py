"""Load: many parties, every member submitting, for minutes (issue 7, item 16).

Starts a real server in the embedded default mode (as `make run` does: SQLite, the in-memory
channel layer, the render worker inside the server process), creates `--parties` parties over
HTTP with `--members` members each (every member its own browser session), opens one WebSocket
per member, and has every member submit a prompt every `--interval` seconds (each starting at a
random moment of the first interval) for `--minutes`. Then it stops submitting, waits for the
queue to drain, and counts:

- lost prompts: a submission that neither came back as `prompt.added` nor was refused;
- lost renders: a prompt whose `render.done` (or other end) never reached its author;
- lost or repeated events: on each member's socket, archived events must arrive with seqs
  since+1, since+2, ... (a gap or a repeat is counted);
- submit -> `render.done` at the submitter: median, p95, p99, max;
- the server process's resident memory, sampled every 5 s.

`overhead-probe` renders blank images at once (PARTYHUB_OVERHEAD_PROBE=1), so that run measures
PartyHub itself; `offline` is the bundled model on this machine's CPU. This is a benchmark, not a
test:

    .venv/bin/python bench/load.py [--parties 50] [--members 10] [--minutes 10]
        [--interval 30] [--model overhead-probe] [--steps 4] [--json PATH]
"""

import argparse
import asyncio
import datetime
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import HOST, REPO, Server, Session  # noqa: E402

DRAIN_TIMEOUT = 600  # seconds for the queue to empty after the last submission
SAMPLE_EVERY = 5  # seconds between memory samples


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parties", type=int, default=50)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument(
        "--interval", type=float, default=30, help="seconds between a member's prompts"
    )
    parser.add_argument("--model", default="overhead-probe")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--models-dir", type=Path, default=REPO / "var" / "models")
    return parser.parse_args(argv)


class Member:
    """One member's socket: what it sent, and every frame it got, checked as it arrives."""

    def __init__(self, session, code, name):
        self.session, self.code, self.name = session, code, name
        self.sent = {}  # text -> send time
        self.added = {}  # text -> prompt id (own prompts)
        self.ended = {}  # prompt id -> (event type, arrival time), for every prompt of the party
        self.refused = []  # error codes
        self.last_seq = None
        self.gaps = self.repeats = 0

    async def connect(self, since):
        server = self.session.server
        self.last_seq = since
        self.ws = await websockets.connect(
            f"ws://{HOST}:{server.port}/ws/parties/{self.code}/?since={since}",
            additional_headers={"Cookie": self.session.cookie_header(), "Origin": server.origin},
            max_size=None,
            open_timeout=60,
        )
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        async for raw in self.ws:
            now = time.perf_counter()
            frame = json.loads(raw)
            if "seq" in frame:
                if frame["seq"] <= self.last_seq:
                    self.repeats += 1
                    continue
                if frame["seq"] != self.last_seq + 1:
                    self.gaps += 1
                self.last_seq = frame["seq"]
            kind = frame["type"]
            if kind == "prompt.added" and frame["prompt"]["text"] in self.sent:
                self.added[frame["prompt"]["text"]] = frame["prompt"]["id"]
            elif kind in ("render.done", "render.failed", "render.cancelled", "render.filtered"):
                self.ended.setdefault(frame["prompt"], (kind, now))
            elif kind == "error":
                self.refused.append(frame["code"])

    async def submit_every(self, interval, until, params):
        await asyncio.sleep(random.uniform(0, interval))
        i = 0
        while time.perf_counter() < until:
            text = f"{self.name} prompt {i}"
            self.sent[text] = time.perf_counter()
            await self.ws.send(
                json.dumps({"type": "prompt.submit", "text": text, "params": params})
            )
            i += 1
            await asyncio.sleep(interval)

    def unfinished(self):
        return [text for text, prompt in self.added.items() if prompt not in self.ended]


async def warm_up(member, params):
    """One render before the clock starts: the server loads its models at the first one."""
    member.sent["warm-up"] = time.perf_counter()
    message = {"type": "prompt.submit", "text": "warm-up", "params": params}
    await member.ws.send(json.dumps(message))
    while member.added.get("warm-up") not in member.ended:
        await asyncio.sleep(0.2)
    del member.sent["warm-up"], member.added["warm-up"]


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def sample_memory(pid, samples, stop):
    start = time.perf_counter()
    while not stop.is_set():
        samples.append((round(time.perf_counter() - start), round(rss_mb(pid), 1)))
        try:
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)
        except TimeoutError:
            pass


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(args, server):
    parties = []
    for p in range(args.parties):
        host = Session(server)
        host.get_csrf_cookie()
        code = host.post("/api/parties", {"topic": f"load {p}", "name": f"p{p}m0"}, 201)["code"]
        sessions = [host]
        for m in range(1, args.members):
            guest = Session(server)
            guest.get_csrf_cookie()
            guest.post(f"/api/parties/{code}/join", {"name": f"p{p}m{m}"}, 200)
            sessions.append(guest)
        _, snapshot = host.request("GET", f"/api/parties/{code}")
        parties.append((code, sessions, snapshot["last_seq"]))
    members = []
    for p, (code, sessions, since) in enumerate(parties):
        for m, session in enumerate(sessions):
            member = Member(session, code, f"p{p}m{m}")
            await member.connect(since)
            members.append(member)
    print(f"  {len(members)} members connected in {len(parties)} parties", flush=True)
    params = {"model": args.model, "steps": args.steps}
    await warm_up(members[0], params)

    memory, stop_sampling = [], asyncio.Event()
    sampler = asyncio.create_task(sample_memory(server.process.pid, memory, stop_sampling))
    started = time.perf_counter()
    until = started + args.minutes * 60
    await asyncio.gather(*(m.submit_every(args.interval, until, params) for m in members))
    submitting = time.perf_counter() - started
    print(f"  submitted for {submitting:.0f} s; draining", flush=True)

    deadline = time.perf_counter() + DRAIN_TIMEOUT
    while time.perf_counter() < deadline:
        waiting = sum(len(m.sent) - len(m.added) - len(m.refused) for m in members)
        if not waiting and not any(m.unfinished() for m in members):
            break
        await asyncio.sleep(1)
    drained = time.perf_counter() - started - submitting
    await asyncio.sleep(2)  # the last events reach the other members too
    stop_sampling.set()
    await sampler
    for member in members:
        await member.ws.close()

    latencies, ends = [], {}
    for member in members:
        for text, prompt in member.added.items():
            if prompt in member.ended:
                kind, at = member.ended[prompt]
                ends[kind] = ends.get(kind, 0) + 1
                if kind == "render.done":
                    latencies.append(at - member.sent[text])
    sent = sum(len(m.sent) for m in members)
    refused = [code for m in members for code in m.refused]
    return {
        "parties": args.parties,
        "members": len(members),
        "model": args.model,
        "steps": args.steps,
        "interval_s": args.interval,
        "submitting_s": round(submitting),
        "draining_s": round(drained),
        "sent": sent,
        "taken": sum(len(m.added) for m in members),
        "refused": {code: refused.count(code) for code in set(refused)},
        "lost_prompts": sent - sum(len(m.added) for m in members) - len(refused),
        "ends": ends,
        "lost_renders": sum(len(m.unfinished()) for m in members),
        "seq_gaps": sum(m.gaps for m in members),
        "seq_repeats": sum(m.repeats for m in members),
        "renders_per_s": round(len(latencies) / (submitting + drained), 2),
        "submit_to_done_s": {
            "median": round(statistics.median(latencies), 3),
            "p95": round(percentile(latencies, 0.95), 3),
            "p99": round(percentile(latencies, 0.99), 3),
            "max": round(max(latencies), 3),
        }
        if latencies
        else None,
        "server_rss_mb": {
            "first": memory[0][1],
            "max": max(mb for _, mb in memory),
            "last": memory[-1][1],
            "samples": memory,
        },
    }


def main(argv=None):
    args = parse_args(argv)
    args.models_dir.mkdir(parents=True, exist_ok=True)
    server = Server(args.models_dir)
    # One address starts every party here, and each member submits more than a person would.
    server.env.update(
        PARTYHUB_NEW_PARTIES_PER_HOUR="100000",
        PARTYHUB_PARTY_RENDERS_PER_MINUTE="100000",
        PARTYHUB_AUTOPILOT="0",
    )
    server.start()
    try:
        result = asyncio.run(run(args, server))
    finally:
        server.stop()
    result["machine"] = f"{platform.node()}, {platform.processor() or platform.machine()}"
    result["date"] = datetime.date.today().isoformat()
    summary = {k: v for k, v in result.items() if k != "server_rss_mb"}
    summary["server_rss_mb"] = {k: v for k, v in result["server_rss_mb"].items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
