"""Best of N in Chromium against `make run` (the offline model and CLIP): the composer's "Best
of" renders the candidates, the card shows the kept image, and "Show the … set aside" brings the
others with their rank, score and seed. Fixtures in browsing.py."""

import pytest
from browsing import RENDER_TIMEOUT_MS, start_party
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_best_of_keeps_one_and_shows_the_set_aside_on_request(server, browser, screenshots):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    errors = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    page, _ = start_party(context, server, "best of")
    page.click("#params summary")
    page.fill("#composer [name=steps]", "4")
    page.fill("#composer [name=best_of]", "3")
    page.fill("#prompt-text", "a red circle on a white background")
    page.click("#composer button[type=submit]")

    card = page.locator('#renders .card[data-status="done"]')
    expect(card).to_have_count(1, timeout=RENDER_TIMEOUT_MS)
    expect(card.locator("figure.shot")).to_have_count(1)  # count 1: the best of 3
    show = card.get_by_role("button", name="Show the 2 set aside")
    show.click()
    aside = card.locator(".set-aside figure")
    expect(aside).to_have_count(2)
    expect(aside.first.locator("figcaption")).to_contain_text("#2 · 0.")
    expect(aside.nth(1).locator("figcaption")).to_contain_text("#3 · ")
    page.screenshot(path=screenshots / "best-of-set-aside.png", full_page=True)
    card.get_by_role("button", name="Hide the set aside").click()
    expect(card.locator(".set-aside")).to_have_count(0)
    assert errors == []
    context.close()
