"""The room's outbox in Chromium against `make run`: a prompt sent while the party's socket is not
open waits, says so, and is sent once, in order, when the socket opens. Playwright stands between
the page and the server's socket (page.route_web_socket) to keep it shut until the test lets it
through. Fixtures in browsing.py."""

import json
import re
import sqlite3

import pytest
from browsing import RENDER_TIMEOUT_MS
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Refused sockets back off (1 s, 2 s, 4 s, … with jitter) before the next try.
RECONNECT_MS = 30_000


def stored_renders(server, code):
    with sqlite3.connect(server.var / "partyhub.sqlite3") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM partyhub_render r JOIN partyhub_party p ON r.party_id = p.id"
            " WHERE p.code = ?",
            (code,),
        ).fetchone()
    return count


def test_a_prompt_sent_before_the_socket_opens_waits_and_renders_once(server, browser, screenshots):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # Until `letting_through`, every party socket is closed before it opens, as when the server
    # is unreachable; then they reach the server, and the prompts sent on them are counted.
    letting_through = False
    prompts_sent = []

    def party_socket(ws):
        if not letting_through:
            ws.close()
            return
        server_side = ws.connect_to_server()

        def forward(message):
            if json.loads(message)["type"] == "prompt.submit":
                prompts_sent.append(json.loads(message))
            server_side.send(message)

        ws.on_message(forward)

    page.route_web_socket(re.compile(r"/ws/parties/"), party_socket)
    page.goto(server + "/")
    page.fill("#start-form [name=topic]", "waiting rooms")
    page.fill("#start-form [name=name]", "Ann")
    page.click("#start-form button[type=submit]")
    page.wait_for_url("**/p/*/")
    code = page.url.rstrip("/").rsplit("/", 1)[-1]
    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-state", "reconnecting")

    # Render before the socket ever opened: the prompt waits, and the room says so. An impatient
    # second click waits in its place rather than behind it.
    page.click("#params summary")
    page.fill("#composer [name=steps]", "4")
    page.fill("#prompt-text", "a yellow square on a white background")
    page.click("#composer-submit")
    submit = page.locator("#composer-submit")
    expect(submit).to_have_text("Waiting for the connection…")
    expect(connection).to_contain_text("1 waiting to send")
    page.click("#composer-submit")
    expect(connection).to_contain_text("1 waiting to send")
    expect(page.locator("#prompt-text")).to_have_value("a yellow square on a white background")
    # Steering acts on the room as it is now: refused at once, not kept for later.
    page.locator("#steer-toggle").click()
    expect(page.locator(".toast", has_text="Not connected")).to_be_visible()
    expect(connection).to_contain_text("1 waiting to send")
    page.screenshot(path=screenshots / "outbox-waiting.png")
    assert stored_renders(server, code) == 0

    letting_through = True
    expect(connection).to_have_attribute("data-state", "live", timeout=RECONNECT_MS)
    done = page.locator('#renders .card[data-status="done"]')
    expect(done).to_have_count(1, timeout=RENDER_TIMEOUT_MS)
    expect(submit).to_have_text("Render")
    expect(connection).to_have_text("live")
    expect(page.locator("#prompt-text")).to_have_value("")  # sent and accepted
    page.wait_for_timeout(1500)  # a second render, had one been queued, would show by now
    expect(page.locator("#renders .card")).to_have_count(1)
    assert len(prompts_sent) == 1
    assert prompts_sent[0]["text"] == "a yellow square on a white background"
    assert stored_renders(server, code) == 1
    page.screenshot(path=screenshots / "outbox-sent.png")
    assert errors == []
    context.close()
