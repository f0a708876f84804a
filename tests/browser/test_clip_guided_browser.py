"""A CLIP-guided render watched forming, in Chromium against `make run`: the Prompt Master picks
the offline clip-guided model in the composer, and the room's card and the stage each show the
picture changing, step after step, before the finished image replaces it. Fixtures in
browsing.py."""

import pytest
from browsing import RENDER_TIMEOUT_MS, start_party
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Every src a preview <img> takes under `root`, gathered as the page changes.
WATCH_PREVIEWS = """(root) => {
  window.seenPreviews = new Set();
  const note = () => document.querySelectorAll(`${root} img.preview`).forEach(
    (img) => window.seenPreviews.add(img.src));
  new MutationObserver(note).observe(document.body,
    {subtree: true, childList: true, attributes: true, attributeFilter: ["src"]});
}"""


def test_the_room_and_the_stage_watch_the_picture_form(server, browser, screenshots):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page, code = start_party(context, server, "clip-guided")
    stage = context.new_page()
    stage.goto(f"{server}/p/{code}/stage/")
    errors = []
    for each in (page, stage):
        each.on("pageerror", lambda error: errors.append(str(error)))
    page.evaluate(WATCH_PREVIEWS, "#renders")
    stage.evaluate(WATCH_PREVIEWS, "#stage-image")

    page.click("#params summary")
    page.select_option("#composer [name=model]", "offline-clip-guided")
    # The composer takes the model's own limits and sampler.
    expect(page.locator("#composer [name=sampler]")).to_have_value("Adam")
    expect(page.locator("#composer [name=guidance]")).to_have_attribute("max", "0")
    page.fill("#prompt-text", "a large yellow circle on a blue background")
    page.fill("#composer [name=steps]", "120")
    page.click("#composer button[type=submit]")
    expect(page.locator('#renders .card[data-status="done"]')).to_have_count(
        1, timeout=RENDER_TIMEOUT_MS
    )
    expect(stage.locator("#stage-image")).to_have_attribute("data-showing", "render")
    room_frames = page.evaluate("() => window.seenPreviews.size")
    stage_frames = stage.evaluate("() => window.seenPreviews.size")
    # At most 4 frames a second over a render of a few seconds: several different pictures.
    assert room_frames >= 3, room_frames
    assert stage_frames >= 3, stage_frames
    state = page.evaluate(f"() => fetch('/api/parties/{code}').then((r) => r.json())")
    (prompt,) = state["prompts"]
    assert (prompt["params"]["model"], prompt["params"]["sampler"]) == (
        "offline-clip-guided",
        "Adam",
    )
    page.screenshot(path=screenshots / "clip-guided-room.png", full_page=True)
    stage.screenshot(path=screenshots / "clip-guided-stage.png")
    assert errors == []
    context.close()
