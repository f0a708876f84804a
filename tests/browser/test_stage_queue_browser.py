"""The stage tells a queued render from a running one, in Chromium against `make run`."""

import json

import pytest
from browsing import RENDER_TIMEOUT_MS
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


class HoldProgress:
    """Forwards the stage's party WebSocket, but holds the server's frames from the first
    `render.progress` on until released: until then the stage has seen the render queued and
    nothing more, as when the renderer is busy with other work."""

    def __init__(self, page):
        self.routes, self.held, self.holding = [], [], True
        page.route_web_socket("**/ws/parties/**", self.route)

    def route(self, ws):
        self.routes.append(ws)
        upstream = ws.connect_to_server()

        def from_server(message):
            progress = json.loads(message).get("type") == "render.progress"
            if self.held or (self.holding and progress):
                self.held.append(message)
            else:
                ws.send(message)

        upstream.on_message(from_server)

    def release_one(self):
        self.routes[-1].send(self.held.pop(0))

    def release(self):
        self.holding = False
        while self.held:
            self.release_one()


def test_the_stage_calls_a_render_running_only_once_it_started(server, browser, screenshots):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    errors = []
    room = context.new_page()
    room.goto(server + "/")
    room.fill("#start-form [name=topic]", "the sea")
    room.fill("#start-form [name=name]", "Ann")
    room.click("#start-form button[type=submit]")
    room.wait_for_url("**/p/*/")
    expect(room.locator("#connection")).to_have_attribute("data-state", "live")
    code = room.url.rstrip("/").rsplit("/", 1)[-1]

    stage = context.new_page()
    stage.on("pageerror", lambda error: errors.append(str(error)))
    held = HoldProgress(stage)
    stage.goto(f"{server}/p/{code}/stage/")
    expect(stage.locator("#connection")).to_have_attribute("data-state", "live")

    # Queued: render.queued came, no progress frame yet.
    room.fill("#prompt-text", "a lighthouse in the fog")
    room.click("#composer-submit")
    queued = stage.locator("#stage-queued")
    expect(queued).to_be_visible()
    expect(stage.locator("#stage-queued-label")).to_have_text("Waiting to start")
    expect(queued.locator("li")).to_have_text(["a lighthouse in the fog (Ann)"])
    expect(stage.locator("#stage-running")).to_be_hidden()
    expect(stage.get_by_text("Rendering now").filter(visible=True)).to_have_count(0)
    stage.screenshot(path=screenshots / "stage-queued.png")

    # Its first progress frame (step 0: it started) makes it running. The worker may have
    # finished the render meanwhile: the frames after that one are held back too.
    _wait_for_held(held, room)
    held.release_one()
    expect(stage.locator("#stage-running")).to_be_visible()
    expect(stage.locator("#stage-running-label")).to_have_text("Rendering now")
    expect(stage.locator("#stage-running-text")).to_have_text("a lighthouse in the fog · Ann")
    expect(queued).to_be_hidden()
    stage.screenshot(path=screenshots / "stage-running.png")

    held.release()
    expect(stage.locator("#stage-image img.stage-shot")).to_have_count(1, timeout=RENDER_TIMEOUT_MS)
    expect(stage.locator("#stage-running")).to_be_hidden()
    expect(queued).to_be_hidden()
    assert errors == []
    context.close()


def _wait_for_held(held, page):
    """Until the worker has sent the render's first progress frame (and it was held)."""
    for _ in range(RENDER_TIMEOUT_MS // 100):
        if held.held:
            return
        page.wait_for_timeout(100)
    pytest.fail("the render never started")
