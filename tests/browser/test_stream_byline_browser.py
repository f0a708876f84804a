"""The watch page's live images say who made them as its history does: "by autopilot" once."""

import json

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_a_live_autopilot_image_reads_by_autopilot_once(server, browser):
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server + "/")
    watch_url = page.locator(".streams-list a").first.get_attribute("href")

    # The stream's socket, played by the test: two images arrive live, the autopilot's and Mia's.
    frames = [
        {"id": 900001, "url": "data:,", "prompt": "a red ring", "author": "autopilot"},
        {"id": 900002, "url": "data:,", "prompt": "two circles", "author": "mia"},
    ]

    def stream_socket(ws):
        for image in frames:
            image = {**image, "autopilot": image["author"] == "autopilot", "score": None}
            ws.send(json.dumps({"type": "stream.image", "image": image}))

    page.route_web_socket("**/ws/streams/**", stream_socket)
    page.goto(server + watch_url)
    auto = page.locator('.stream-shot[data-image="900001"] .stream-author')
    expect(auto).to_have_text("by autopilot")
    expect(page.locator('.stream-shot[data-image="900002"] .stream-author')).to_have_text("by mia")
    assert errors == []
