"""The embedded render worker's thread (no Celery configured)."""

import threading

from generation import embedded


async def test_its_thread_does_not_keep_a_stopping_server_alive():
    # A render cut off by the server stopping is requeued at the next start; the thread must not
    # be joined at exit, where one waiting on a broadcast to the stopped loop waited forever.
    thread = await embedded._in_thread(threading.current_thread)
    assert thread.name == "partyhub-render" and thread.daemon
    assert await embedded._in_thread(threading.current_thread) is thread  # one render at a time
