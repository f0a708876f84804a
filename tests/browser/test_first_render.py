"""A newcomer's first render does not wait behind the streams (issue 18, item 1): against
`make run`, with someone watching a seeded stream so that its autopilot renders, a party's
render starts before every autopilot render queued after it."""

import re
import sqlite3
import time

import pytest
from browsing import RENDER_TIMEOUT_MS
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def renders(server):
    """(id, queued_at, started_at, is a stream's) for every render the server has stored."""
    with sqlite3.connect(server.var / "partyhub.sqlite3") as db:
        return db.execute(
            "SELECT r.id, r.queued_at, r.started_at, s.id IS NOT NULL FROM partyhub_render r "
            "LEFT JOIN streams_stream s ON s.party_id = r.party_id ORDER BY r.id"
        ).fetchall()


def test_a_party_render_starts_before_autopilot_renders_queued_after_it(server, browser):
    watcher = browser.new_context().new_page()
    watcher.goto(server + "/s/circles-and-rings/")
    # Other tests' pages may watch too: this one counts among them.
    expect(watcher.locator("#viewers")).to_have_text(re.compile(r"[1-9]\d* watching"))
    # Watched, the stream's autopilot renders: its first image appears.
    expect(watcher.locator(".stream-shot").first).to_be_visible(timeout=RENDER_TIMEOUT_MS)

    host = browser.new_context().new_page()
    host.goto(server + "/")
    host.fill("#start-form [name=topic]", "lighthouses")
    host.fill("#start-form [name=name]", "Ann")
    host.click("#start-form button[type=submit]")
    host.wait_for_url("**/p/*/")
    host.fill("#prompt-text", "two red circles")
    host.click("#composer button[type=submit]")
    expect(host.locator(".card .shot img").first).to_be_visible(timeout=RENDER_TIMEOUT_MS)

    party = [row for row in renders(server) if not row[3]][-1]
    # Wait for the autopilot to queue again after the party's render, still watched.
    deadline = time.monotonic() + RENDER_TIMEOUT_MS / 1000
    while not [r for r in renders(server) if r[3] and r[1] > party[1]]:
        assert time.monotonic() < deadline, "the watched stream's autopilot stopped"
        time.sleep(0.5)
    later = [r for r in renders(server) if r[3] and r[1] > party[1]]
    assert all(r[2] is None or r[2] > party[2] for r in later), (party, later)
    watcher.context.close()
    host.context.close()
