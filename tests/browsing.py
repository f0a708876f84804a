"""Browser tests' shared parts: Debian's headless Chromium (Playwright never downloads its own
here) against PartyHub started by `make run`, as a new user starts it. The fixtures are
registered in conftest.py; the constants are imported by the browser test modules."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
# A render on the offline model takes well under a second, but the first one waits for the
# worker to build and load the model: be generous, never assert on timings.
RENDER_TIMEOUT_MS = 60_000
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, process, log_path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make run exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"make run did not listen on {port} in {timeout}s:\n{log_path.read_text()}")


class Server(str):
    """The base URL of a server started by a test, and its `var` folder (its SQLite database,
    media and log), for a test that checks what the server did, not only what a page shows."""

    def __new__(cls, url, var):
        server = super().__new__(cls, url)
        server.var = var
        return server


@pytest.fixture(scope="session")
def server(tmp_path_factory, models_dir):
    """PartyHub started by `make run`, as the README says, on a free port; its base URL.

    The environment is a new user's: no DEBUG, SECRET_KEY, DATABASE_URL or REDIS_URL.
    """
    var = tmp_path_factory.mktemp("var")
    unset = ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "PARTYHUB_RENDER_WORKER")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    port = free_port()
    env.update(
        PORT=str(port),
        PARTYHUB_VAR_DIR=str(var),
        MEDIA_ROOT=str(var / "media"),
        PARTYHUB_MODELS_DIR=str(models_dir),
    )
    log_path = var / "make-run.log"
    with log_path.open("wb") as log:
        # Its own process group: make, its shell and the server stop together.
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_port(port, process, log_path)
            yield Server(f"http://127.0.0.1:{port}", var)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (CI does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def screenshots(tmp_path):
    """Where screenshots go: PARTYHUB_SCREENSHOTS to look at them, else a temporary folder."""
    folder = Path(os.environ.get("PARTYHUB_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def start_party(context, server, topic="loneliness", name="Ann", title="", steered=True):
    """Start a party from the home page (a free-for-all where `steered` is False, where everyone
    renders); its room page, once its socket is live, and its code."""
    from playwright.sync_api import expect

    page = context.new_page()
    page.goto(server + "/")
    page.fill("#start-form [name=topic]", topic)
    if title:
        page.fill("#start-form [name=title]", title)
    page.fill("#start-form [name=name]", name)
    if not steered:
        page.uncheck("#start-form [name=steered]")
    page.click("#start-form button[type=submit]")
    page.wait_for_url("**/p/*/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page, page.url.rstrip("/").rsplit("/", 1)[-1]


def join(browser, url, name, errors, **context):
    """`name` joins the party at `url` in a new browser context; its page errors go to
    `errors`. Returns the room's page once it is live."""
    from playwright.sync_api import expect

    page = browser.new_context(**context).new_page()
    page.on("pageerror", lambda error: errors.append(f"{name}: {error}"))
    page.goto(url)
    page.fill("#join-form [name=name]", name)
    page.click("#join-form button[type=submit]")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


def paste(page, selector, text):
    """Paste `text` into a field as a person does (Ctrl+V from the clipboard): the browser applies
    the field's own limits to it, as it would to a real paste."""
    page.evaluate("(text) => navigator.clipboard.writeText(text)", text)
    page.click(selector)
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.press("ControlOrMeta+V")
