"""`manage.py runserver` with the embedded worker loads the default model and the CLIP scorer as
it starts, before any request: a newcomer's first render must not wait for them (issue 18,
item 1; docs/performance.md "A newcomer's first render")."""

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

from browsing import free_port

REPO = Path(__file__).resolve().parents[2]


def test_runserver_loads_the_model_and_the_scorer_before_any_request(tmp_path):
    unset = ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "PARTYHUB_RENDER_WORKER")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env |= {"DEBUG": "1", "PARTYHUB_VAR_DIR": str(tmp_path)}
    address = f"127.0.0.1:{free_port()}"
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", address, "--noreload"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wanted = {"loading offline from", "loading CLIP partyhub-offline-clip"}
    log = []
    try:
        # Nothing connects to the server: only its start can have started the loading.
        with selectors.DefaultSelector() as selector:
            selector.register(server.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 120  # a liveness bound, not a speed assertion
            while wanted and time.monotonic() < deadline and server.poll() is None:
                if selector.select(timeout=1):
                    log.append(server.stdout.readline())
                    wanted = {w for w in wanted if w not in log[-1]}
    finally:
        server.kill()
        server.wait()
    assert not wanted, "".join(log)
