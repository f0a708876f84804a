"""No text field cuts what is pasted into it (issue 18, item 3). A field's `maxlength` would cut
a long paste silently; each field past its limit instead keeps the whole text, says how long it
is against the limit, and its form does not submit until it is shortened (lengths.js)."""

import pytest
from browsing import paste, start_party
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_no_page_cuts_a_paste(server, browser, screenshots):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    room, code = start_party(context, server, "lighthouses", "Ann")
    errors = []
    room.on("pageerror", lambda error: errors.append(str(error)))

    # No page a visitor meets has a field that would cut a paste.
    visitor = context.new_page()
    pages = ("/", f"/p/{code}/", "/s/circles-and-rings/", "/search/")
    for path in pages + ("/accounts/signup/", "/accounts/login/"):
        visitor.goto(server + path)
        assert visitor.locator("input[maxlength], textarea[maxlength]").count() == 0, path
    assert room.locator("input[maxlength], textarea[maxlength]").count() == 0

    # An association pasted 150 characters long: kept whole, counted, not sent.
    long_word = "lighthouse keeper " * 8 + "x" * 6  # 150 characters
    paste(room, "#association-form [name=text]", long_word)
    field = room.locator("#association-form [name=text]")
    expect(field).to_have_value(long_word)
    count = room.locator("#association-form + .chars-over")
    expect(count).to_have_text("150 / 100 characters: shorten it by 50")
    room.click("#association-form button[type=submit]")
    expect(field).to_have_value(long_word)  # not sent: a sent form is emptied
    expect(room.locator("#associations .word")).to_have_count(0)
    room.screenshot(path=screenshots / "association-too-long.png")

    # Shortened, it goes, and the count goes away.
    paste(room, "#association-form [name=text]", "the keeper")
    expect(count).to_be_hidden()
    room.click("#association-form button[type=submit]")
    expect(room.locator("#associations .word")).to_have_count(1)

    # The home page's topic: 5,000 characters stay in the field; no party is started.
    home = context.new_page()
    home.goto(server + "/")
    paste(home, "#start-form [name=topic]", "t" * 5000)
    home.fill("#start-form [name=name]", "Bob")
    expect(home.locator("#start-form [name=topic]")).to_have_value("t" * 5000)
    expect(home.locator("#start-form .chars-over")).to_have_text(
        "5,000 / 200 characters: shorten it by 4,800"
    )
    home.click("#start-form button[type=submit]")
    expect(home.locator("#start-form .chars-over")).to_be_visible()
    assert "/p/" not in home.url
    assert errors == []
    context.close()
