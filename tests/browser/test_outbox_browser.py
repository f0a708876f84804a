"""The room's outbox in Chromium against `make run`: a prompt sent while the party's socket is not
open waits, says so, and is sent once, in order, when the socket opens; a prompt sent on a socket
that read "open" but was dead is sent again after the reconnect, and renders once whether or not
the server had taken it. Playwright stands between the page and the server's socket
(route_web_socket) to keep it shut, or to lose frames on it, until the test lets it through.
Fixtures in browsing.py."""

import json
import re
import sqlite3

import pytest
from browsing import RENDER_TIMEOUT_MS, start_party
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Refused sockets back off (1 s, 2 s, 4 s, … with jitter) before the next try.
RECONNECT_MS = 30_000


def stored_renders(server, code, table="partyhub_render"):
    """How many renders (or, with table="partyhub_prompt", prompts) the party has in the server's
    database."""
    with sqlite3.connect(server.var / "partyhub.sqlite3") as db:
        (count,) = db.execute(
            f"SELECT count(*) FROM {table} r JOIN partyhub_party p ON r.party_id = p.id"
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


def render_a_prompt(page, text):
    page.click("#params summary")
    page.fill("#composer [name=steps]", "4")
    page.fill("#prompt-text", text)
    page.click("#composer-submit")


def test_a_prompt_lost_on_a_dead_socket_is_sent_again_and_renders_once(
    server, browser, screenshots
):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    errors = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    # The first socket is dead without knowing it: the prompt sent on it never reaches the
    # server, and then it closes. Later ones are refused until `letting_through`.
    letting_through = False
    sockets = 0
    prompts_sent = []  # (which socket, the message)

    def party_socket(ws):
        nonlocal sockets
        sockets += 1
        mine = sockets
        if mine > 1 and not letting_through:
            ws.close()
            return
        server_side = ws.connect_to_server()

        def forward(message):
            if json.loads(message)["type"] == "prompt.submit":
                prompts_sent.append((mine, json.loads(message)))
                if mine == 1:
                    ws.close()  # lost on the way, and the server's side of it is gone
                    return
            server_side.send(message)

        ws.on_message(forward)

    context.route_web_socket(re.compile(r"/ws/parties/"), party_socket)
    page, code = start_party(context, server, topic="lost letters")
    render_a_prompt(page, "a blue circle on a white background")

    # Closed with the prompt unanswered: it waits again, and the room says so.
    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-state", "reconnecting")
    expect(connection).to_contain_text("1 waiting to send")
    expect(page.locator("#composer-submit")).to_have_text("Waiting for the connection…")
    page.screenshot(path=screenshots / "outbox-resend-waiting.png")
    assert stored_renders(server, code) == 0

    letting_through = True
    expect(connection).to_have_attribute("data-state", "live", timeout=RECONNECT_MS)
    expect(page.locator('#renders .card[data-status="done"]')).to_have_count(
        1, timeout=RENDER_TIMEOUT_MS
    )
    expect(connection).to_have_text("live")
    expect(page.locator("#prompt-text")).to_have_value("")
    page.wait_for_timeout(1500)  # a second render, had one been queued, would show by now
    expect(page.locator("#renders .card")).to_have_count(1)
    assert [(socket, message["text"]) for socket, message in prompts_sent] == [
        (1, "a blue circle on a white background"),
        (sockets, "a blue circle on a white background"),
    ]
    assert prompts_sent[0][1]["client_id"] == prompts_sent[1][1]["client_id"]
    assert stored_renders(server, code) == 1
    assert stored_renders(server, code, table="partyhub_prompt") == 1
    assert errors == []
    context.close()


def test_a_prompt_taken_whose_answer_was_lost_renders_once_after_the_reconnect(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    errors = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    # On the first socket the server takes the prompt, but nothing it sends back after that
    # reaches the page; the test then closes it. Later sockets work.
    routes = []
    prompts_sent = []

    def party_socket(ws):
        routes.append(ws)
        mine = len(routes)
        server_side = ws.connect_to_server()
        answer_lost = False

        def to_server(message):
            nonlocal answer_lost
            if json.loads(message)["type"] == "prompt.submit":
                prompts_sent.append((mine, json.loads(message)))
                answer_lost = mine == 1
            server_side.send(message)

        def to_page(message):
            if not answer_lost:
                ws.send(message)

        ws.on_message(to_server)
        server_side.on_message(to_page)

    context.route_web_socket(re.compile(r"/ws/parties/"), party_socket)
    page, code = start_party(context, server, topic="lost answers")
    render_a_prompt(page, "a green square on a white background")
    for _ in range(100):  # the server took it: its render is queued
        if stored_renders(server, code):
            break
        page.wait_for_timeout(100)
    assert stored_renders(server, code) == 1
    expect(page.locator("#renders .card")).to_have_count(0)  # its answer never came
    routes[0].close()

    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-state", "live", timeout=RECONNECT_MS)
    expect(page.locator('#renders .card[data-status="done"]')).to_have_count(
        1, timeout=RENDER_TIMEOUT_MS
    )
    page.wait_for_timeout(1500)  # a second render, had one been queued, would show by now
    expect(page.locator("#renders .card")).to_have_count(1)
    expect(connection).to_have_text("live")
    # Sent again on the new socket (its answer had not come), and taken once.
    assert [socket for socket, _ in prompts_sent] == [1, 2]
    assert prompts_sent[0][1]["client_id"] == prompts_sent[1][1]["client_id"]
    assert stored_renders(server, code) == 1
    assert stored_renders(server, code, table="partyhub_prompt") == 1
    assert errors == []
    context.close()
