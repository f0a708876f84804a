"""The home page's join form and its dead ends, and the list of the parties this browser joined,
in Chromium against `make run` (DEBUG=1: a 404 there would be Django's debug page)."""

import re

import pytest
from browsing import paste, start_party
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_wrong_code_is_said_on_the_home_page_and_goes_nowhere(
    server, browser, screenshots, viewport
):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    errors, documents = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "request",
        lambda request: request.resource_type == "document" and documents.append(request.url),
    )
    page.goto(server + "/")
    documents.clear()
    join = page.locator("#join-form")
    message = page.locator("#join-error")
    expect(message).to_be_hidden()

    # A well-formed code no party has: the server is asked, the page stays and says so.
    page.fill("#join-form [name=code]", "zzz-zzz")
    join.get_by_role("button", name="Go to the party").click()
    expect(message).to_be_visible()
    expect(message).to_have_text(re.compile(r"^No party has the code ZZZZZZ\."))
    expect(page.locator("#join-form [name=code]")).to_have_value("ZZZZZZ")
    expect(page.locator("#join-form [name=code]")).to_be_focused()
    assert page.url == server + "/"
    assert documents == [] and errors == []
    name = "desktop" if viewport is DESKTOP else "phone"
    join.scroll_into_view_if_needed()
    page.screenshot(path=screenshots / f"home-wrong-code-{name}.png")

    # Letters no code has, and a code of the wrong length, are said without asking the server.
    page.fill("#join-form [name=code]", "0O1IL2")
    expect(message).to_contain_text("Join codes have no 0, O, 1, I or L")
    page.fill("#join-form [name=code]", "ABC")
    expect(message).to_be_hidden()  # still being typed
    join.get_by_role("button", name="Go to the party").click()
    expect(message).to_have_text("A join code has 6 characters; ABC has 3.")
    assert page.url == server + "/" and documents == []

    # The address itself, typed by hand: a page that says so, with the form to try again.
    response = page.goto(server + "/p/ZZZZZZ/")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("No party has the code ZZZZZZ")
    expect(page.locator("#join-form [name=code]")).to_have_value("ZZZZZZ")
    page.screenshot(path=screenshots / f"no-party-page-{name}.png", full_page=True)
    assert errors == []
    context.close()


def test_a_pasted_code_is_cleaned_before_anything_cuts_it(server, browser, screenshots):
    host = browser.new_context(viewport=DESKTOP)
    _, code = start_party(host, server, topic="tides", name="Ann")

    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Joining is the expected path: nothing on it is refused, so the console stays clean (the
    # code's check once asked a members-only API and logged a 403 at every join).
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(server + "/")
    field = page.locator("#join-form [name=code]")

    # As people copy it out of a chat: dashes, spaces, lower case, more than 6 characters.
    for pasted in [f"{code[:3].lower()}-{code[3:].lower()}", f" {code[:3]} {code[3:]} "]:
        paste(page, "#join-form [name=code]", pasted)
        expect(field).to_have_value(code)
        expect(page.locator("#join-error")).to_be_hidden()
    # A room link pasted whole gives its code.
    paste(page, "#join-form [name=code]", f"{server}/p/{code.lower()}/")
    expect(field).to_have_value(code)
    # Too long is said, not cut to a code that may be someone else's.
    paste(page, "#join-form [name=code]", code + "-X")
    expect(field).to_have_value(code + "X")
    expect(page.locator("#join-error")).to_have_text(
        f"A join code has 6 characters; {code}X has 7."
    )

    paste(page, "#join-form [name=code]", f"{code[:3].lower()}-{code[3:].lower()}")
    page.locator("#join-form").get_by_role("button", name="Go to the party").click()
    page.wait_for_url(f"**/p/{code}/")
    page.fill("#join-form [name=name]", "Bob")
    page.click("#join-form button[type=submit]")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")

    # Back home, the party is listed: topic, who this browser is there, and the way back.
    page.goto(server + "/")
    item = page.locator("#my-parties .my-party")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("tides")
    expect(item.locator(".my-party-me")).to_have_text("as Bob · Participant")
    page.screenshot(path=screenshots / "home-my-parties-phone.png", full_page=True)
    item.get_by_role("link").click()
    page.wait_for_url(f"**/p/{code}/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    assert errors == []
    host.close()
    context.close()


def test_the_home_page_lists_the_parties_this_browser_joined(server, browser, screenshots):
    context = browser.new_context(viewport=DESKTOP)
    start_party(context, server, topic="loneliness", name="Ann", title="A quiet evening")
    start_party(context, server, topic="distant planets", name="Captain Ann")
    page = context.new_page()
    page.goto(server + "/")
    items = page.locator("#my-parties .my-party")
    expect(items).to_have_count(2)
    # Newest first, each with its topic, title, this browser's name and role there.
    expect(items.nth(0)).to_contain_text("distant planets")
    expect(items.nth(0).locator(".my-party-me")).to_have_text("as Captain Ann · Prompt Master")
    expect(items.nth(1).locator(".my-party-link")).to_contain_text("loneliness")
    expect(items.nth(1).locator(".my-party-title")).to_have_text("A quiet evening")
    page.screenshot(path=screenshots / "home-my-parties-desktop.png", full_page=True)
    context.close()


def test_on_a_phone_joining_comes_first_and_the_offline_notice_is_one_line(server, browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(server + "/")
    join, start = (page.locator(f"#{form}").bounding_box() for form in ("join-form", "start-form"))
    assert join["y"] < start["y"] and join["y"] + join["height"] < PHONE["height"]
    notice = page.locator("#model-notice")
    line = page.locator("#join-form .hint").first.bounding_box()["height"]  # two lines of hint
    assert notice.bounding_box()["height"] < line * 1.5
    notice.get_by_role("button", name="more").click()
    assert notice.bounding_box()["height"] > line * 2  # the whole note
    # Dismissed here, it is gone from the room too: one notice, one decision.
    notice.get_by_role("button", name="Dismiss this notice").click()
    expect(notice).to_be_hidden()
    page.reload()
    expect(page.locator("#model-notice")).to_be_hidden()
    room, _ = start_party(context, server, "tides", "Ann")
    expect(room.locator("#composer [name=model] option").first).to_be_attached()  # models in
    expect(room.locator("#model-notice")).to_be_hidden()
    context.close()
