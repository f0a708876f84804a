"""The production settings: Django's deployment check passes behind HTTPS, and the secret key comes
from the environment only. Each case runs `manage.py` in a process of its own, as an operator
would, since settings are read once at start-up."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"
PRODUCTION = {"DEBUG": "0", "ALLOWED_HOSTS": "party.example.org", "PARTYHUB_HTTPS": "1"}
DEPLOY_CHECK = ("check", "--deploy", "--fail-level", "WARNING")


def manage(*args, **env):
    inherited = {
        k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "PARTYHUB_HTTPS")
    }
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_production_settings_pass_the_deployment_check():
    done = manage(*DEPLOY_CHECK, SECRET_KEY=secrets.token_urlsafe(50), **PRODUCTION)
    assert done.returncode == 0, done.stderr


def test_served_over_plain_http_the_check_names_each_missing_protection():
    plain = {**PRODUCTION, "PARTYHUB_HTTPS": "0"}
    done = manage(*DEPLOY_CHECK, SECRET_KEY=secrets.token_urlsafe(50), **plain)
    assert done.returncode != 0
    # HSTS, the redirect to HTTPS, secure session and CSRF cookies
    for check in ("W004", "W008", "W012", "W016"):
        assert f"security.{check}" in done.stderr


def test_a_weak_secret_key_fails_the_check():
    done = manage(*DEPLOY_CHECK, SECRET_KEY="short", **PRODUCTION)
    assert done.returncode != 0 and "security.W009" in done.stderr


def test_without_a_secret_key_in_the_environment_it_does_not_start():
    done = manage("check", **PRODUCTION)
    assert done.returncode != 0 and "Set SECRET_KEY in the environment" in done.stderr
