"""A newcomer's first render: `make run` on a fresh `var` folder (new database, new local secret),
then in Debian's headless Chromium a party is started from the home page and its first prompt
rendered, timed as that newcomer would feel it.

    .venv/bin/python bench/first_render.py [--watch-stream] [--think 0] [--runs 3]

Each run starts its own `make run` with the environment a new user has (no DEBUG, SECRET_KEY,
DATABASE_URL or REDIS_URL) and prints, in seconds: from `make run` until the server listens, from
opening the home page until the room's socket is live, from pressing Render until the image is on
the page, then the same for a second prompt, the model now loaded. `--watch-stream` keeps a second
tab on a seeded stream throughout, so that its autopilot renders beside the party, as when
someone else is watching. `--think` waits that many seconds in the room before pressing Render,
as a person reading and typing would. A benchmark, not a test.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 120_000
FORMAT = "listening %.1f s, room live %.1f s, Render to image %.1f s, the next render %.1f s"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(var):
    """`make run` on a free port with a fresh var folder: (process, port, seconds to listen)."""
    unset = ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "PARTYHUB_RENDER_WORKER")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    port = free_port()
    env.update(PORT=str(port), PARTYHUB_VAR_DIR=str(var), MEDIA_ROOT=str(var / "media"))
    started = time.perf_counter()
    log = (var / "make-run.log").open("wb")
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make, its shell and the server stop together
    )
    while True:
        if process.poll() is not None:
            raise SystemExit(f"make run exited:\n{(var / 'make-run.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, port, time.perf_counter() - started
        except OSError:
            time.sleep(0.05)


def one_run(browser, watch_stream, think):
    from playwright.sync_api import expect

    with tempfile.TemporaryDirectory(prefix="first-render-") as folder:
        process, port, listening = start_server(Path(folder))
        base = f"http://127.0.0.1:{port}"
        try:
            if watch_stream:
                watcher = browser.new_context().new_page()
                watcher.goto(base + "/s/circles-and-rings/")
            page = browser.new_context().new_page()
            opened = time.perf_counter()
            page.goto(base + "/")
            page.fill("#start-form [name=topic]", "lighthouses")
            page.fill("#start-form [name=name]", "Ann")
            page.click("#start-form button[type=submit]")
            page.wait_for_url("**/p/*/")
            expect(page.locator("#connection[data-state=live]")).to_be_attached(timeout=TIMEOUT_MS)
            live = time.perf_counter() - opened
            page.fill("#prompt-text", "two red circles")
            time.sleep(think)  # a person reading the room and typing
            pressed = time.perf_counter()
            page.click("#composer button[type=submit]")
            expect(page.locator(".card .shot img").first).to_be_visible(timeout=TIMEOUT_MS)
            rendered = time.perf_counter() - pressed
            # The same again, the model now loaded: what the first render paid for loading it.
            page.fill("#prompt-text", "a blue square")
            pressed = time.perf_counter()
            page.click("#composer button[type=submit]")
            expect(page.locator(".card .shot img")).to_have_count(2, timeout=TIMEOUT_MS)
            again = time.perf_counter() - pressed
            return listening, live, rendered, again
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--watch-stream", action="store_true")
    parser.add_argument(
        "--think", type=float, default=0, help="seconds between the room going live and Render"
    )
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for run in range(args.runs):
            rows.append(one_run(browser, args.watch_stream, args.think))
            print(f"run {run + 1}: " + FORMAT % rows[-1])
        browser.close()
    medians = [statistics.median(column) for column in zip(*rows, strict=True)]
    print("median: " + FORMAT % tuple(medians))


if __name__ == "__main__":
    main()
