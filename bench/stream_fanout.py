"""Stream fan-out: many viewers of one stream over two Daphne processes sharing Redis.

    .venv/bin/python bench/stream_fanout.py [--viewers 100 500 1000 2000] [--rate 10] [--seconds 60]
        [--stalled 10] [--servers 2] [--arrivals 1000] [--json PATH]

For each viewer count it starts two Daphne processes on a fresh SQLite database (migrated, so
its seeded streams exist; it watches the first) with REDIS_URL pointing at Redis (db 14 by
default), opens the viewers' WebSockets spread over both, plus `--stalled` viewers that never
read, and publishes `stream.image` events into the stream's group through the Redis channel
layer at `--rate` a second, each stamped with its publish time. Every viewer that reads stamps
what it receives. Reported: publish -> receive latency p50/p95/p99 over all deliveries, events
lost per viewer, both servers' resident memory at start, with everyone connected and at the
end, and the servers' CPU time per frame delivered.

This is a benchmark, not a test. It needs a running Redis.
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import websockets

REPO = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)  # run it with the project's .venv/bin/python
ORIGIN = "http://127.0.0.1"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[100, 500, 1000, 2000])
    parser.add_argument("--rate", type=float, default=10.0, help="images published per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--stalled", type=int, default=10, help="extra viewers that connect and never read"
    )
    parser.add_argument("--servers", type=int, default=2, help="Daphne processes")
    parser.add_argument(
        "--arrivals", type=float, default=1000, help="viewers connecting per second"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid):
    """User plus system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_servers(env, logs, count=2):
    ports, processes = [], []
    for index in range(count):
        port = free_port()
        processes.append(
            subprocess.Popen(
                [
                    str(PYTHON),
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "config.asgi:application",
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(logs / f"daphne-{index}.log").open("w"),
            )
        )
        ports.append(port)
    for port in ports:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"daphne on {port} did not start")
    return ports, processes


async def run_case(viewers, args, env, ports, pids):
    import django

    os.environ.update(env)
    django.setup()
    from channels.layers import get_channel_layer

    from streams.models import Stream

    # The first seeded stream (which ones depends on the default model).
    stream = await asyncio.to_thread(lambda: Stream.objects.filter(active=True).order_by("pk")[0])
    layer = get_channel_layer()
    received = [[] for _ in range(viewers)]
    joined = []  # viewers whose socket is open: publishing waits for all of them

    async def watch(index):
        port = ports[index % len(ports)]
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/streams/{stream.slug}/",
            additional_headers={"Origin": f"{ORIGIN}:{port}"},
            max_queue=None,
            open_timeout=120,  # thousands opening at once queue for the server's handshakes
        ) as ws:
            joined.append(index)
            async for raw in ws:
                frame = json.loads(raw)
                if frame["type"] == "stream.image":
                    received[index].append(time.time() - frame["image"]["sent_at"])
                    if frame["image"]["id"] == last_id:
                        return

    async def stall(index):
        # A viewer on a link that takes nothing: a small socket buffer, one frame read ahead,
        # and never a recv(). The server must not keep what it cannot send it.
        port = ports[index % len(ports)]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.connect(("127.0.0.1", port))
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/streams/{stream.slug}/",
            sock=sock,
            additional_headers={"Origin": f"{ORIGIN}:{port}"},
            max_queue=1,
        )
        stalled.append(ws)

    stalled = []
    await asyncio.gather(*(stall(index) for index in range(args.stalled)))
    total = int(args.rate * args.seconds)
    first_id = 10**9
    last_id = first_id + total - 1
    tasks = []
    for index in range(viewers):
        tasks.append(asyncio.create_task(watch(index)))
        if index % 50 == 49:
            await asyncio.sleep(50 / args.arrivals)  # do not stampede the accept queue
    deadline = time.monotonic() + 120
    while len(joined) < viewers and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(2)  # the last ones' rooms and catch-ups settle
    connected_rss = [rss_mb(pid) for pid in pids]
    connected_cpu = sum(cpu_seconds(pid) for pid in pids)  # the connections' cost ends here
    client_cpu = time.process_time()  # this process's own share of the two cores
    start = time.monotonic()
    for n in range(total):
        image_id = first_id + n
        image = {
            "id": image_id,
            "url": f"/media/bench/{image_id}.png",
            "prompt": "p",
            "author": "bench",
            "autopilot": True,
            "score": None,
            "sent_at": time.time(),
        }
        message = {"type": "stream.image", "image": image}
        # As streams/signals.py publishes: the frame encoded once, and the image before it.
        await layer.group_send(
            stream.group,
            {**message, "after": image_id - 1 if n else 0, "frame": json.dumps(message)},
        )
        await asyncio.sleep(max(0, start + (n + 1) / args.rate - time.monotonic()))
    done, pending = await asyncio.wait(tasks, timeout=30)
    publishing_cpu = sum(cpu_seconds(pid) for pid in pids) - connected_cpu
    client_cpu = time.process_time() - client_cpu
    client_seconds = time.monotonic() - start
    for task in pending:
        task.cancel()
    for ws in stalled:
        ws.transport.abort()
    latencies = sorted(x * 1000 for r in received for x in r)
    lost = [total - len(r) for r in received]
    delivered = sum(len(r) for r in received)

    def pct(p):
        return (
            latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else None
        )

    return {
        "viewers": viewers,
        "stalled_viewers": len(stalled),
        "published": total,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "lost_per_viewer_max": max(lost),
        "lost_per_viewer_mean": statistics.mean(lost),
        "lost_total": sum(lost),
        "viewers_finished": len(done),
        "rss_mb_connected": connected_rss,
        # Server CPU per frame while images were published: the fan-out alone, connections and
        # their handshakes left out (server_cpu_us_per_frame below counts them too).
        "publishing_cpu_us_per_frame": round(publishing_cpu / max(delivered, 1) * 1e6, 1),
        # The viewers' client: cores it kept busy while images were published (and read).
        "client_cores": round(client_cpu / client_seconds, 2),
    }


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    results = []
    for viewers in args.viewers:
        var = Path(tempfile.mkdtemp(prefix="partyhub-fanout-"))
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "0",
            "SECRET_KEY": "bench-only",
            "PARTYHUB_VAR_DIR": str(var),
            "REDIS_URL": args.redis,
            "PARTYHUB_AUTOPILOT": "0",
        }
        env.pop("DATABASE_URL", None)
        subprocess.run(
            [str(PYTHON), "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, check=True
        )
        # A fresh Redis db: group members left by the previous case's servers would be sent to.
        redis.Redis.from_url(args.redis).flushdb()
        ports, processes = start_servers(env, var, args.servers)
        try:
            start_rss = [rss_mb(p.pid) for p in processes]
            start_cpu = sum(cpu_seconds(p.pid) for p in processes)
            result = asyncio.run(run_case(viewers, args, env, ports, [p.pid for p in processes]))
            result["rss_mb_start"] = start_rss
            result["rss_mb_end"] = [rss_mb(p.pid) for p in processes]
            # Server CPU per frame delivered (connecting the viewers included): what one
            # Daphne process can fan out per second of a core is about 1 / this.
            frames = viewers * result["published"] - result["lost_total"]
            cpu = sum(cpu_seconds(p.pid) for p in processes) - start_cpu
            result["server_cpu_us_per_frame"] = round(cpu / frames * 1e6, 1)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=10)
        print(json.dumps(result), flush=True)
        results.append(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
