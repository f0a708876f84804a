"""Prompt weights in the composer, in Chromium against `make run`: the box is off, and brackets
count as text, with a hint; ticked, the counter counts the words alone and how many are weighted,
says a slip at once, and the prompt goes out with `weights`. Fixtures in browsing.py."""

import pytest
from browsing import RENDER_TIMEOUT_MS, start_party
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# 7 tokens to the offline model, brackets and numbers aside.
PROMPT = "a ((red:1.5)) [circle] on a white background"


def test_the_counter_shows_the_weights_and_the_prompt_carries_them(server, browser, screenshots):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page, code = start_party(context, server, "weights")
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    counter = page.locator("#prompt-tokens")
    page.click("#params summary")
    box = page.locator("#composer [name=weights]")
    expect(box).not_to_be_checked()
    expect(page.locator("#weights-note")).to_be_hidden()  # the offline model takes weights

    page.fill("#prompt-text", PROMPT)
    expect(counter).to_contain_text("brackets read as text: tick Prompt weights")
    box.check()
    expect(counter).to_have_text("7 / 22 tokens · 2 weighted")
    expect(counter).to_have_attribute("title", "red ×1.65, circle ×0.909")

    page.fill("#prompt-text", "a (red:abc) circle")
    expect(counter).to_contain_text("the weight after the ':' at character 7 must be a number")
    expect(counter).to_have_attribute("data-over", "true")

    page.fill("#prompt-text", PROMPT)
    page.fill("#composer [name=steps]", "2")
    page.click("#composer button[type=submit]")
    expect(page.locator('#renders .card[data-status="done"]')).to_have_count(
        1, timeout=RENDER_TIMEOUT_MS
    )
    state = page.evaluate(f"() => fetch('/api/parties/{code}').then((r) => r.json())")
    (prompt,) = state["prompts"]
    assert (prompt["text"], prompt["params"]["weights"]) == (PROMPT, True)
    page.screenshot(path=screenshots / "prompt-weights.png", full_page=True)
    assert errors == []
    context.close()
