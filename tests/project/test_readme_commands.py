"""Every `manage.py` command the README shows for a local install runs as written on a fresh
checkout, with nothing set in the environment: no SECRET_KEY and no DEBUG (issue 18, item 2)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
# The production block exports its own SECRET_KEY: its commands are the operator's, not these.
LOCAL_PART = README[: README.index("export SECRET_KEY=")]
# What stands for a value in the README, and the value these runs give it.
PLACEHOLDERS = {"<slug>": "rivers", "...": "Rivers", "FILE": "{file}"}


def readme_commands():
    """Each `.venv/bin/python manage.py ...` command of the README's local part, one line each."""
    text = " ".join(LOCAL_PART.split())  # commands may wrap across lines
    return sorted(set(re.findall(r"`(\.venv/bin/python manage\.py [^`]+)`", text)))


def concrete(command, file):
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    words = shlex.split(command.format(file=file))
    if words[2] == "createsuperuser":  # asks for a name and a password at a terminal
        words.append("--noinput")
    return [sys.executable, *words[1:]]


@pytest.fixture
def fresh_checkout_env(tmp_path):
    """The environment of someone who only cloned the repository: nothing of this test run's."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PARTYHUB_VAR_DIR": str(tmp_path)}
    # createsuperuser --noinput reads what it would have asked for from these
    env |= {"DJANGO_SUPERUSER_USERNAME": "admin", "DJANGO_SUPERUSER_PASSWORD": "a long passphrase"}
    env["DJANGO_SUPERUSER_EMAIL"] = "admin@example.org"
    return env


def test_the_readme_shows_the_commands_this_test_runs():
    names = {command.split()[2] for command in readme_commands()}
    assert names == {"createsuperuser", "create_stream", "watermark"}


def test_each_readme_command_runs_without_a_secret_key(fresh_checkout_env, tmp_path):
    image = tmp_path / "picture.png"
    Image.new("RGB", (300, 300), "white").save(image)

    def run(words):
        return subprocess.run(
            words, cwd=REPO, env=fresh_checkout_env, capture_output=True, text=True, timeout=300
        )

    migrated = run([sys.executable, "manage.py", "migrate", "--noinput"])  # as `make run` does
    assert migrated.returncode == 0, migrated.stderr
    for command in readme_commands():
        done = run(concrete(command, image))
        expected = {0, 1} if " watermark check " in command else {0}  # 1: no watermark in it
        assert done.returncode in expected, f"{command}\n{done.stderr}"
        assert "SECRET_KEY" not in done.stderr
    # A key of its own, made once, readable by its owner only, and kept for the next process.
    key = tmp_path / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(key.read_text()) >= 50


def test_served_to_other_machines_it_still_wants_a_key(fresh_checkout_env):
    for served in ({"ALLOWED_HOSTS": "party.example.org"}, {"PARTYHUB_HTTPS": "1"}):
        done = subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=REPO,
            env={**fresh_checkout_env, **served},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0 and "Set SECRET_KEY in the environment" in done.stderr
