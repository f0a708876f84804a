"""The secret key of a PartyHub that runs on this machine alone: random, generated on first use
and kept in var/ (readable by its owner only), so sessions survive restarts and no key is ever
written in the code."""

import os
import secrets
import time


def local_secret_key(path):
    """The key stored at `path`, created there first if it is missing. Two processes starting
    at once agree: the file is created exclusively, and the one that loses reads the winner's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as file:
        file.write(key)
    return key


def _read(path):
    for _ in range(50):  # the winner may not have written it yet
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty: delete it and start again")
