"""A Celery worker whose renders misbehave on request, for tests/faults/test_worker_faults.py.

Run as `python tests/faulty_worker.py -A partyhub worker ...` (the arguments `celery` takes).
Renders use the overhead probe's blank images (PARTYHUB_OVERHEAD_PROBE=1), but first take
their `steps` steps, FAULTY_STEP_SECONDS each, reporting progress as a model does; a word in
the prompt picks a fault, at step 2:

- "crash": the pool process kills itself with SIGKILL, on every delivery;
- "hang": it sleeps until the soft time limit interrupts it;
- "stubborn": it swallows the soft time limit too, so only the hard limit ends it.

FAULTY_VISIBILITY_TIMEOUT, if set, shrinks the broker's visibility timeout alone (the settings
tie it to the hard time limit).
"""

import os
import signal
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
sys.path.insert(0, os.getcwd())
django.setup()

from celery.exceptions import SoftTimeLimitExceeded  # noqa: E402

from config.celery import app  # noqa: E402
from generation.errors import Cancelled  # noqa: E402
from partyhub.jobs import runner  # noqa: E402

STEP_SECONDS = float(os.environ.get("FAULTY_STEP_SECONDS", "0.1"))
_generate_batch = runner.generate_batch


def generate_batch(preset, slots, on_step, should_stop):
    text, steps = slots[0].prompt, slots[0].params["steps"]
    for step in range(1, steps + 1):
        if step == 2:
            inject(text)
        time.sleep(STEP_SECONDS)
        on_step(step, steps, None)
        if should_stop():
            raise Cancelled()
    return _generate_batch(preset, slots, on_step, should_stop)


def inject(text):
    if "crash" in text:
        os.kill(os.getpid(), signal.SIGKILL)
    if "hang" in text:
        time.sleep(3600)
    if "stubborn" in text:
        while True:
            try:
                time.sleep(3600)
            except SoftTimeLimitExceeded:
                pass


runner.generate_batch = generate_batch
if os.environ.get("FAULTY_VISIBILITY_TIMEOUT"):
    app.conf.broker_transport_options = {
        "visibility_timeout": int(os.environ["FAULTY_VISIBILITY_TIMEOUT"]),
        # Look for overdue messages every second, not every 100 s.
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }

if __name__ == "__main__":
    app.start(sys.argv[1:])
