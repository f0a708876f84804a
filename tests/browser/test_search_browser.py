"""The search box in the room and on /search/, in Chromium against `make run` (which scores and
searches with the bundled offline CLIP)."""

import pytest
from browsing import RENDER_TIMEOUT_MS
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_room_searches_its_images_and_the_galleries_page_too(server, browser, screenshots):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server + "/")
    page.fill("#start-form [name=topic]", "loneliness")
    page.fill("#start-form [name=name]", "Ann")
    page.uncheck("#start-form [name=steered]")
    page.click("#start-form button[type=submit]")
    page.wait_for_url("**/p/*/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    page.click("#params summary")
    for count, text in enumerate(("a large red circle", "two small blue squares"), start=1):
        page.fill("#prompt-text", text)
        page.fill("#composer [name=count]", "1")
        page.click("#composer button[type=submit]")
        shots = page.locator("#renders .shot img")
        expect(shots).to_have_count(count, timeout=RENDER_TIMEOUT_MS)

    search = page.locator("#search")
    search.locator("[name=text]").fill("CIRCLE")
    search.get_by_role("button", name="Search").click()
    hits = search.locator(".search-hit")
    expect(hits).to_have_count(1)
    expect(hits.first.locator("figcaption")).to_contain_text("a large red circle")
    expect(hits.first.locator("figcaption")).to_contain_text("Ann · seed ")
    src = hits.first.locator("img").get_attribute("src")
    assert src in shots.evaluate_all("imgs => imgs.map(i => i.getAttribute('src'))")
    expect(search.locator(".search-count")).to_have_text("1 image, the newest first.")
    search.screenshot(path=screenshots / "search-room.png")

    search.locator("[name=text]").fill("a lighthouse")
    search.get_by_role("button", name="Search").click()
    expect(search.locator(".search-count")).to_have_text("Nothing found.")
    expect(hits).to_have_count(0)

    # By meaning, through the offline CLIP: the red circle's picture ranks first.
    search.locator("[name=meaning]").check()
    search.locator("[name=text]").fill("a red circle on a white background")
    search.get_by_role("button", name="Search").click()
    expect(hits).to_have_count(2)
    expect(hits.first.locator("figcaption")).to_contain_text("a large red circle")
    search.locator("[name=meaning]").uncheck()

    search.locator(".search-more summary").click()
    search.locator("[name=seed]").fill("seven")
    search.get_by_role("button", name="Search").click()
    expect(search.locator(".form-error")).to_contain_text("seed must be a whole number")

    # Every published gallery: this party is not published, so nothing of it is found.
    page.goto(server + "/search/")
    expect(page.locator("#search [name=meaning]")).to_be_enabled()
    page.fill("#search [name=text]", "chair")
    page.click("#search button[type=submit]")
    expect(page.locator("#search .search-count")).to_have_text("Nothing found.")
    assert errors == []


def test_by_meaning_only_close_images_are_matches_and_the_nearest_are_labelled(
    server, browser, screenshots
):
    """The offline CLIP's cut-off in the page: a pink star is a close match for "a pink star",
    a red circle only one of the nearest, labelled; a text matching nothing says so."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server + "/")
    page.fill("#start-form [name=topic]", "shapes")
    page.fill("#start-form [name=name]", "Cleo")
    page.uncheck("#start-form [name=steered]")
    page.click("#start-form button[type=submit]")
    page.wait_for_url("**/p/*/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    page.click("#params summary")
    # Seed 3: pictures the offline model draws as asked (as in tests/party/test_search.py).
    for count, text in enumerate(("a pink star", "a red circle"), start=1):
        page.fill("#prompt-text", text)
        page.fill("#composer [name=count]", "1")
        page.fill("#composer [name=seed]", "3")
        page.click("#composer button[type=submit]")
        expect(page.locator("#renders .shot img")).to_have_count(count, timeout=RENDER_TIMEOUT_MS)

    search = page.locator("#search")
    search.locator("[name=meaning]").check()
    search.locator("[name=text]").fill("a pink star")
    search.get_by_role("button", name="Search").click()
    count = search.locator(".search-count")
    expect(count).to_have_text("1 close match.")
    matches = search.locator(".search-results .search-hit")
    expect(matches).to_have_count(1)
    expect(matches.first.locator("figcaption")).to_contain_text("a pink star")
    nearest = search.locator(".search-nearest")
    expect(nearest).to_be_visible()
    expect(nearest).to_contain_text("Not close matches")
    expect(nearest.locator(".search-hit.not-close")).to_have_count(1)
    expect(nearest.locator("figcaption")).to_contain_text("a red circle")
    expect(nearest.locator("figcaption")).to_contain_text("not close")
    search.screenshot(path=screenshots / "search-meaning-room.png")

    search.locator("[name=text]").fill("a green moon")
    search.get_by_role("button", name="Search").click()
    expect(count).to_have_text("No close matches.")
    expect(search.locator(".search-results .search-hit")).to_have_count(0)
    expect(nearest.locator(".search-hit.not-close")).to_have_count(2)
    search.screenshot(path=screenshots / "search-meaning-nothing-close.png")

    search.locator("[name=text]").fill("a pink star in the night sky")
    search.get_by_role("button", name="Search").click()
    expect(count).to_contain_text("does not know “night”, “sky”.")

    search.locator("[name=text]").fill("an empty chair")
    search.get_by_role("button", name="Search").click()
    expect(search.locator(".form-error")).to_contain_text("knows only the shapes, colours")
    expect(nearest).to_be_hidden()
    assert errors == []
