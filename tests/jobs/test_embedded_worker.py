"""The embedded render worker's thread (no Celery configured)."""

import threading

from partyhub.jobs import embedded


def test_its_thread_does_not_keep_a_stopping_server_alive():
    # A render cut off by the server stopping is requeued at the next start; the thread must not
    # be joined at exit, where one waiting on a broadcast to the stopped loop waited forever.
    thread = embedded._executor.submit(threading.current_thread).result(timeout=10)
    assert thread.name == "partyhub-render" and thread.daemon
    assert embedded._executor.submit(threading.current_thread).result(timeout=10) is thread
