"""The stage, a phone joining from its QR code, and the replay, in Chromium against `make run`."""

import json
import re
import shutil

import pytest
from browsing import RENDER_TIMEOUT_MS, ROOT, start_party
from playwright.sync_api import expect

from partyhub.qr import join_qr_svg
from partyhub.timeline import timeline

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
# The page's width in CSS pixels and the viewport's. On a phone, a page wider than the screen
# also widens the layout viewport, so both are compared with the phone's own width.
WIDTHS = "[document.documentElement.scrollWidth, window.innerWidth]"


def render(page, text, **params):
    """Submit a prompt from the room's composer with some parameters changed."""
    page.fill("#prompt-text", text)
    if params:
        if page.locator("#params").get_attribute("open") is None:
            page.click("#params summary")
        for name, value in params.items():
            page.fill(f"#composer [name={name}]", str(value))
    page.click("#composer-submit")


def assert_fits(page, width):
    scroll_width, inner_width = page.evaluate(WIDTHS)
    assert inner_width == width and scroll_width <= width, (page.url, scroll_width, inner_width)


class HeldBack:
    """Forwards a page's party WebSocket, but keeps server frames from the first `render.done` on
    until release(): the stage then shows a render's preview for as long as the test needs."""

    def __init__(self, page):
        self.routes, self.held, self.released = [], [], False
        page.route_web_socket("**/ws/parties/**", self.route)

    def route(self, ws):
        self.routes.append(ws)
        upstream = ws.connect_to_server()

        def from_server(message):
            frame = json.loads(message)
            if not self.released and (self.held or frame.get("type") == "render.done"):
                self.held.append(message)
            else:
                ws.send(message)

        upstream.on_message(from_server)

    def release(self):
        self.released = True
        for message in self.held:
            self.routes[-1].send(message)


def test_the_stage_projects_the_join_qr_code_and_the_render_forming(server, browser, screenshots):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    errors = []
    room, code = start_party(context, server, "distant planets", steered=False)
    stage = context.new_page()
    stage.on("pageerror", lambda error: errors.append(str(error)))
    held = HeldBack(stage)
    stage.goto(f"{server}/p/{code}/stage/")
    expect(stage.locator("#connection")).to_have_attribute("data-state", "live")

    # The QR code is the room's address, drawn by segno on the server.
    room_url = f"{server}/p/{code}/"
    qr = stage.locator("#stage-qr")
    expect(qr).to_have_attribute("data-url", room_url)
    # The browser writes the SVG back its own way: compare the modules segno drew.
    drawn = join_qr_svg(room_url)
    modules = re.search(r'class="qrline" stroke="#000" d="([^"]+)"', drawn).group(1)
    expect(qr.locator("svg path.qrline")).to_have_attribute("d", modules)
    expect(qr.locator("svg")).to_have_attribute(
        "viewBox", re.search(r'viewBox="([^"]+)"', drawn).group(1)
    )
    box = stage.locator("#stage-qr svg").bounding_box()
    assert box["width"] == box["height"] and box["width"] >= 0.4 * 720
    expect(stage.locator(".stage-code")).to_have_text(code)
    expect(stage.locator(".stage-loopback")).to_be_visible()  # 127.0.0.1 is this machine's only
    expect(stage.locator(".stage-waiting")).to_be_visible()

    # The worker sends a preview with the first step's progress (partyhub/jobs/watch.py), so any
    # render of 2 steps or more has one; render.done is held back until the test has seen it.
    render(room, "a red planet over a sea of glass", steps=4, width=128, height=128)
    forming = stage.locator("#stage-image[data-showing=preview] img.preview")
    expect(forming).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    assert forming.get_attribute("src").startswith("data:image/webp;base64,")
    expect(stage.locator("#stage-label")).to_contain_text("Forming now")
    expect(stage.locator("#stage-prompt")).to_have_text("a red planet over a sea of glass")
    expect(stage.locator("#stage-author")).to_have_text("by Ann")
    expect(stage.locator("#stage-running")).to_be_visible()
    stage.screenshot(path=screenshots / "stage-forming.png")

    # The room has the finished image; once the stage gets render.done it replaces the preview.
    expect(room.locator(".shot img")).to_have_count(1, timeout=RENDER_TIMEOUT_MS)
    url = room.locator(".shot img").get_attribute("src")
    expect(forming).to_be_visible()  # still held back
    held.release()
    shot = stage.locator("#stage-image[data-showing=render] img.stage-shot")
    expect(shot).to_have_count(1)
    expect(shot).to_have_attribute("src", url)
    expect(stage.locator("#stage-image img.preview")).to_have_count(0)
    expect(stage.locator("#stage-label")).to_be_hidden()
    expect(stage.locator("#stage-running")).to_be_hidden()

    # A newer render of two images: both fill the stage, with their prompt and author.
    render(room, "two moons", steps=2, width=64, height=64, count=2)
    expect(stage.locator("#stage-image img.stage-shot")).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
    expect(stage.locator("#stage-prompt")).to_have_text("two moons")
    stage.screenshot(path=screenshots / "stage.png")
    assert errors == []
    context.close()


def test_a_phone_joins_from_the_qr_code_in_one_step_and_everything_fits(
    server, browser, screenshots
):
    host = browser.new_context(viewport={"width": 1280, "height": 800})
    room, code = start_party(host, server, steered=False)
    render(room, "two old people on a bench", steps=2, width=64, height=64)
    expect(room.locator(".shot img")).to_have_count(1, timeout=RENDER_TIMEOUT_MS)
    stage = host.new_page()
    stage.goto(f"{server}/p/{code}/stage/")
    scanned = stage.locator("#stage-qr").get_attribute("data-url")

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = phone.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(scanned)
    # The join form asks one thing: a name.
    form = page.locator("#join-form")
    expect(form).to_be_visible()
    expect(form.locator("input:visible")).to_have_count(1)
    assert_fits(page, PHONE["width"])
    page.screenshot(path=screenshots / "phone-join.png")
    form.locator("[name=name]").fill("Bob")
    form.locator("button[type=submit]").tap()

    expect(page.locator("#room")).to_be_visible()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#members")).to_contain_text("Bob")
    expect(page.locator(".shot img")).to_have_count(1)
    expect(page.locator("#composer-submit")).to_be_in_viewport()
    assert_fits(page, PHONE["width"])
    page.screenshot(path=screenshots / "phone-room.png")
    page.click("#params summary")  # the parameters open inside the screen too
    assert_fits(page, PHONE["width"])
    page.screenshot(path=screenshots / "phone-room-full.png", full_page=True)

    # One column: who is here folds to a line above the composer, the other panels stack
    # below the renders.
    renders = page.locator("#renders").bounding_box()
    people = page.locator("#people-summary").bounding_box()
    tree = page.locator("#prompt-tree").bounding_box()
    assert people["y"] < renders["y"] < tree["y"] and tree["x"] < PHONE["width"] / 2

    # The phone can compose and render like everyone else.
    render(page, "a bench in the snow", steps=2, width=64, height=64)
    expect(page.locator(".shot img")).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
    assert_fits(page, PHONE["width"])

    for path, name in [("stage/", "phone-stage.png"), ("replay/", "phone-replay.png")]:
        page.goto(f"{server}/p/{code}/{path}")
        expect(page.locator("#stage-image img, .replay-latest img").first).to_be_visible()
        assert_fits(page, PHONE["width"])
        page.screenshot(path=screenshots / name, full_page=True)
    assert errors == []
    host.close()
    phone.close()


def visible_replay(page):
    """What the replay shows: its entries' texts, the ids of its images, the large one's id."""
    return page.evaluate(
        """() => ({
        texts: [...document.querySelectorAll('.replay-entry')]
          .filter((li) => !li.hidden).map((li) => li.querySelector('.replay-text').textContent),
        thumbs: [...document.querySelectorAll('.replay-thumb')].map((b) => Number(b.dataset.image)),
        latest: Number(document.querySelector('.replay-latest img')?.dataset.image || 0),
      })"""
    )


def expected_replay(entries, k):
    appeared = [image for entry in entries[:k] for image in entry["images"]]
    return {
        "texts": [entry["text"] for entry in entries[:k]],
        "thumbs": appeared[::-1],  # newest first
        "latest": appeared[-1] if appeared else 0,
    }


def test_the_replay_scrubs_through_the_archive(server, browser, screenshots, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    room, code = start_party(context, server, "cats", steered=False)
    render(room, "a cat on a windowsill", steps=2, width=64, height=64, count=2)
    expect(room.locator(".shot img")).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
    room.fill("#association-form [name=text]", "purring")
    room.click("#association-form button[type=submit]")
    expect(room.locator("#associations")).to_contain_text("purring")
    render(room, "a cat asleep in the sun", steps=2, width=64, height=64, count=1)
    expect(room.locator(".shot img")).to_have_count(3, timeout=RENDER_TIMEOUT_MS)
    room.locator(".shot .vote").first.click()
    expect(room.locator(".shot .vote.on")).to_have_count(1)

    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server}/p/{code}/replay/")
    data = json.loads(page.locator("#replay-data").text_content())
    entries = data["entries"]

    # The page's timeline is the archive's, as the events API gives it.
    archive = page.request.get(f"{server}/api/parties/{code}/events").json()["events"]
    snapshot = page.request.get(f"{server}/api/parties/{code}").json()
    names = {member["id"]: member["name"] for member in snapshot["members"]}
    assert entries == timeline(archive, names)
    done = [i for i, entry in enumerate(entries) if entry["type"] == "render.done"]
    assert len(done) == 2 and [len(entries[i]["images"]) for i in done] == [2, 1]

    # It opens on the whole party; the slider at k shows the first k entries and their images.
    slider = page.locator(".replay-slider")
    expect(slider).to_have_attribute("max", str(len(entries)))
    assert visible_replay(page) == expected_replay(entries, len(entries))
    page.screenshot(path=screenshots / "replay.png", full_page=True)
    for k in [0, done[0], done[0] + 1, done[1] + 1, len(entries) - 1, len(entries)]:
        slider.fill(str(k))
        assert visible_replay(page) == expected_replay(entries, k), k
        expect(page.locator(".replay-position")).to_contain_text(f"{k} / {len(entries)}")
    slider.fill(str(done[0] + 1))
    page.screenshot(path=screenshots / "replay-first-render.png", full_page=True)

    # A click on a line goes there; a click on an image goes to when it appeared.
    page.locator(".replay-entry").nth(2).click()
    assert visible_replay(page) == expected_replay(entries, 3)
    slider.fill(str(len(entries)))
    page.locator(f".replay-thumb[data-image='{entries[done[0]]['images'][0]}']").click()
    assert visible_replay(page) == expected_replay(entries, done[0] + 1)

    # Play runs on to the end from where it is.
    page.click(".replay-play")
    expect(page.locator(".replay-position")).to_contain_text(
        f"{len(entries)} / {len(entries)}", timeout=len(entries) * 2000
    )
    expect(page.locator(".replay-play")).to_have_text("▶ Play")
    assert errors == []

    # With no server: a file opened from disk, as the export's index.html embeds it.
    shutil.copy(ROOT / "static/partyhub/replay.js", tmp_path / "replay.js")
    offline = {"entries": entries, "images": {key: f"img-{key}.png" for key in data["images"]}}
    (tmp_path / "index.html").write_text(
        '<!doctype html><meta charset="utf-8"><div id="r" data-replay="data"></div>'
        f'<script type="application/json" id="data">{json.dumps(offline)}</script>'
        '<script src="replay.js"></script>'
    )
    page.goto((tmp_path / "index.html").as_uri())
    page.locator(".replay-slider").fill(str(done[0] + 1))
    assert visible_replay(page) == expected_replay(entries, done[0] + 1)
    latest = page.locator(".replay-latest img").get_attribute("src")
    assert latest == f"img-{entries[done[0]]['images'][-1]}.png"
    assert errors == []
    context.close()
