"""One member floods the party socket; what does it cost the server and everyone else?

A real server in the embedded default mode (`make run`'s: Daphne under runserver, SQLite, the
in-memory channel layer) serves two parties. In party A a flooder sends valid 60 KiB messages
(`association.add`, padded with JSON whitespace to just under the 64 KiB limit) as fast as its
socket takes them, and reads nothing. In party B a member adds an association every 0.2 s and
times each from its send to its `association.added` coming back: other rooms' latency. The
server's resident memory is sampled throughout.

Each run measures twice, side by side: with the per-connection inbound limits as shipped
(`PARTYHUB_WS_*`: a message and byte budget, and a receive buffer past which the socket is not
read), and with them lifted (budgets and buffer so large they never bite), which is how the
server behaved before them.

    .venv/bin/python bench/inbound_flood.py [--seconds 10] [--json PATH]
"""

import argparse
import asyncio
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import Server, Session  # noqa: E402  (the same server and client as latency.py)

MESSAGE_BYTES = 60 * 1024
PROBE_INTERVAL = 0.2
LIFTED = {
    "PARTYHUB_WS_MESSAGES_PER_SECOND": "1000000",
    "PARTYHUB_WS_MESSAGE_BURST": "1000000",
    "PARTYHUB_WS_BYTES_PER_SECOND": str(2**40),
    "PARTYHUB_WS_BYTE_BURST": str(2**40),
    "PARTYHUB_WS_RECEIVE_BUFFER_BYTES": str(2**40),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the flood lasts")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--models-dir", type=Path, default=Path("var/models").resolve())
    return parser.parse_args(argv)


def say(text):
    print(f"  {text}", file=sys.stderr, flush=True)


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def member_socket(server, topic, name):
    session = Session(server)
    session.get_csrf_cookie()
    party = session.post("/api/parties", {"topic": topic, "name": name}, expect=201)
    ws = await websockets.connect(
        f"ws://127.0.0.1:{server.port}{party['ws']}",
        additional_headers={"Origin": server.origin, "Cookie": session.cookie_header()},
        max_size=None,
    )
    return session, party, ws


async def probe(ws, until, latencies):
    """Adds an association every PROBE_INTERVAL and times its way back."""
    i = 0
    while time.monotonic() < until:
        word = f"probe {time.monotonic():.3f}"  # each once: a word said again is refused
        sent = time.monotonic()
        await ws.send(json.dumps({"type": "association.add", "text": word}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=600))
            if frame.get("type") == "error":
                raise RuntimeError(f"the probe was refused: {frame}")
            if frame.get("type") == "association.added" and frame["association"]["text"] == word:
                break
        latencies.append(time.monotonic() - sent)
        i += 1
        await asyncio.sleep(max(0.0, PROBE_INTERVAL - (time.monotonic() - sent)))


async def flood(ws, until):
    """Sends valid 60 KiB messages until `until`; returns how many the socket took."""
    sent = 0
    while (left := until - time.monotonic()) > 0:
        text = f"flood {sent}"
        padding = " " * (MESSAGE_BYTES - len(text) - 50)
        message = f'{{"type": "association.add",{padding}"text": "{text}"}}'
        try:
            await asyncio.wait_for(ws.send(message), timeout=left)
        except TimeoutError:
            break  # the server stopped reading: the rest waits in this client's buffers
        sent += 1
    return sent


async def sample(pid, until, samples):
    while time.monotonic() < until:
        samples.append(rss_mb(pid))
        await asyncio.sleep(0.1)


async def measure(server, seconds):
    flooding, flooded, flooder = await member_socket(server, "a flood", "Flo")
    _, _, prober = await member_socket(server, "a quiet room", "Quinn")
    pid = server.process.pid
    quiet = []
    say("the other room, before the flood")
    await probe(prober, time.monotonic() + 3, quiet)
    before = rss_mb(pid)
    loud, memory = [], []
    until = time.monotonic() + seconds
    say(f"flooding for {seconds} s")
    sent, *_ = await asyncio.gather(
        flood(flooder, until), probe(prober, until, loud), sample(pid, until, memory)
    )
    # What the flood cost once it stops: the server still works through what it buffered.
    after = []
    say("the other room, after the flood")
    await probe(prober, time.monotonic() + 2, after)
    _, snapshot = flooding.request("GET", f"/api/parties/{flooded['code']}")
    await flooder.close()
    await prober.close()

    def summary(values):
        return {
            "n": len(values),
            "p50_ms": round(1000 * statistics.median(values), 1),
            "p95_ms": round(1000 * percentile(values, 0.95), 1),
            "max_ms": round(1000 * max(values), 1),
        }

    return {
        "flood_messages_sent": sent,
        "flood_mib_sent": round(sent * MESSAGE_BYTES / 2**20, 1),
        "flood_messages_applied": len(snapshot["associations"]),
        "rss_before_mib": round(before, 1),
        "rss_peak_mib": round(max(memory), 1),
        "other_room_before": summary(quiet),
        "other_room_during": summary(loud),
        "other_room_after": summary(after),
    }


def run_case(args, env):
    server = Server(args.models_dir)
    # The overhead probe as the model and no autopilot: nothing loads a model or renders, so the
    # server's memory and time are the flood's.
    server.env.update(PARTYHUB_AUTOPILOT="0", **env)
    say(f"starting a server with {env or 'the limits as shipped'}")
    server.start()
    try:
        return asyncio.run(measure(server, args.seconds))
    finally:
        server.stop()


def main(argv=None):
    args = parse_args(argv)
    results = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {platform.processor() or '?'}, {platform.node()}",
        "seconds": args.seconds,
        "limits_on": run_case(args, {}),
        "limits_lifted": run_case(args, LIFTED),
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
