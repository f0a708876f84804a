"""Celery prefork workers in processes of their own, on the real Redis broker and the PostgreSQL
test database, for the tests of the production path and of worker faults. The fixtures are
registered in conftest.py."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from config.celery import app as celery_app
from tests.conftest import test_database_url

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def production_mode(settings, redis_layer, redis_url):
    """This process queues renders on Celery through the test Redis, on a queue of this test's
    own, so a worker left over from an interrupted run takes nothing."""
    queue = f"renders-test-{uuid.uuid4().hex[:8]}"
    settings.PARTYHUB_RENDER_WORKER = "celery"
    previous = celery_app.conf.broker_url, celery_app.conf.task_default_queue
    celery_app.conf.broker_url, celery_app.conf.task_default_queue = redis_url, queue
    yield queue
    celery_app.conf.broker_url, celery_app.conf.task_default_queue = previous


class Worker:
    """One `celery worker` process (the prefork parent) and its log."""

    def __init__(self, process, hostname, log):
        self.process, self.hostname, self.log = process, hostname, log

    @property
    def pid(self):
        return self.process.pid

    def pool_pids(self):
        """The pool processes that run the tasks: the parent's children."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def output(self):
        return self.log.read_text()


@pytest.fixture
def start_worker(production_mode, redis_url, settings, models_dir, tmp_path):
    """Starts workers on this test's queue and waits until each says it is ready; stops them all
    after the test. `program` is a Python file to run instead of `-m celery` (one that injects
    faults, then hands over to Celery with the same arguments); `env` adds to the worker's;
    `broker` is another Redis than the tests' own, `queues` others than the test's queue."""
    started = []

    def start(*, program=None, concurrency=1, env=None, broker=None, queues=None):
        name = f"{production_mode}-{len(started)}@{socket.gethostname()}"
        broker = broker or redis_url
        log = tmp_path / f"worker-{len(started)}.log"
        command = [sys.executable, program] if program else [sys.executable, "-m", "celery"]
        command += ["-A", "partyhub", "worker", "--pool", "prefork"]
        command += ["--concurrency", str(concurrency), "--queues", queues or production_mode]
        command += ["--hostname", name, "--without-gossip", "--without-mingle"]
        command += ["--loglevel", "INFO"]
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env={
                **os.environ,
                "DATABASE_URL": test_database_url(),
                "REDIS_URL": broker,
                "MEDIA_ROOT": str(settings.MEDIA_ROOT),
                "PARTYHUB_MODELS_DIR": str(models_dir),
                **(env or {}),
            },
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        worker = Worker(process, name, log)
        started.append(worker)
        deadline = time.monotonic() + 120
        while f"{name} ready." not in worker.output():
            if process.poll() is not None:
                raise RuntimeError(f"worker exited: {worker.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker never got ready: {worker.output()}")
            time.sleep(0.2)
        return worker

    yield start
    for worker in started:
        # Killed, not stopped politely: a fault test may have left a pool process stopped or
        # hung. The pool processes go first, while the parent can still name them.
        for pid in _pool_pids_if_alive(worker):
            os.kill(pid, signal.SIGKILL)
        worker.process.kill()
        worker.process.wait(timeout=30)


def _pool_pids_if_alive(worker):
    try:
        return worker.pool_pids()
    except OSError:
        return []
