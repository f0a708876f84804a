"""The party room as a finished product, in Chromium against `make run`: the lightbox (an image
at full size with its prompt and copyable A1111 parameters, arrow keys, Escape), who is online,
the composer's refusal of a long paste, the offline notice's one line, and a removed member's
room. Screenshots at a laptop's 1440×900 and a phone's 390×844 (PARTYHUB_SCREENSHOTS keeps
them). The server, browser and screenshots fixtures are in browsing.py."""

import io

import pytest
from browsing import RENDER_TIMEOUT_MS, start_party
from PIL import Image
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1440, "height": 900}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def test_the_lightbox_shows_an_image_its_prompt_and_its_parameters(server, browser, screenshots):
    context = browser.new_context(viewport=LAPTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    errors = []
    ann = context.new_page()
    ann.on("pageerror", lambda error: errors.append(str(error)))
    ann.goto(server + "/")
    ann.fill("#start-form [name=topic]", "stars and hearts")
    ann.fill("#start-form [name=name]", "Ann")
    ann.uncheck("#start-form [name=steered]")
    ann.click("#start-form button[type=submit]")
    ann.wait_for_url("**/p/*/")
    expect(ann.locator("#connection")).to_have_attribute("data-state", "live")

    # The offline model's notice is one line; dismissed, it stays away on this browser.
    notice = ann.locator("#model-notice")
    expect(notice).to_contain_text("world of drawn shapes")
    assert notice.bounding_box()["height"] < 50
    notice.get_by_role("button", name="Dismiss this notice").click()
    expect(notice).to_be_hidden()

    done = ann.locator('#renders .card[data-status="done"]')
    ann.click("#params summary")
    for renders, (text, count) in enumerate((("a red star", "2"), ("a pink heart", "1")), 1):
        ann.fill("#prompt-text", text)
        ann.fill("#composer [name=steps]", "4")
        ann.fill("#composer [name=count]", count)
        ann.click("#composer-submit")
        expect(done).to_have_count(renders, timeout=RENDER_TIMEOUT_MS)
    ann.click("#params summary")
    shots = ann.locator("#renders .shot img")
    expect(shots).to_have_count(3)

    # A click on the newest image opens it large, with its prompt and its parameters: the very
    # text its PNG carries, in AUTOMATIC1111's format.
    shots.first.click()
    lightbox = ann.locator("#lightbox")
    expect(lightbox).to_be_visible()
    expect(lightbox.locator(".lightbox-prompt")).to_have_text("a pink heart")
    expect(lightbox.locator(".lightbox-count")).to_have_text("1 of 3")
    url = ann.locator("#lightbox-img").get_attribute("src")
    png = Image.open(io.BytesIO(ann.request.get(server + url).body()))
    parameters = png.text["parameters"]
    assert parameters.startswith("a pink heart\nSteps: 4, Sampler: ")
    expect(ann.locator("#lightbox-params")).to_have_text(parameters)
    expect(lightbox.locator("button.vote")).to_have_text("☆ 0")
    expect(lightbox.locator(".lightbox-scores")).to_contain_text("matches its prompt: ")
    lightbox.get_by_role("button", name="Copy").click()
    expect(lightbox.get_by_role("button", name="Copied ✓")).to_be_visible()
    assert ann.evaluate("navigator.clipboard.readText()") == parameters
    ann.locator("#lightbox-img").evaluate("img => img.decode()")
    ann.screenshot(path=screenshots / "room-lightbox-1440.png")

    # The arrows go through the images in the grid's order, round; a star counts at once.
    ann.keyboard.press("ArrowRight")
    expect(lightbox.locator(".lightbox-count")).to_have_text("2 of 3")
    expect(lightbox.locator(".lightbox-prompt")).to_have_text("a red star")
    second = ann.locator("#lightbox-img").get_attribute("src")
    assert second != url
    lightbox.locator("button.vote").click()
    expect(lightbox.locator("button.vote")).to_have_text("★ 1")
    ann.keyboard.press("ArrowRight")
    expect(lightbox.locator(".lightbox-count")).to_have_text("3 of 3")
    ann.keyboard.press("ArrowRight")
    expect(lightbox.locator(".lightbox-count")).to_have_text("1 of 3")
    ann.keyboard.press("ArrowLeft")
    expect(lightbox.locator(".lightbox-count")).to_have_text("3 of 3")
    ann.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    expect(ann.locator(f'#renders .shot:has(img[src="{second}"]) button.vote')).to_have_text("★ 1")

    # The room fits the screen: the newest card's picture is on the first screen.
    ann.evaluate("window.scrollTo(0, 0)")
    assert ann.locator("#renders .card").first.bounding_box()["y"] < LAPTOP["height"] / 2
    ann.screenshot(path=screenshots / "room-1440.png")

    # On a phone: a tap opens the lightbox too, and its arrow buttons move through the images.
    phone = browser.new_context(**PHONE).new_page()
    phone.on("pageerror", lambda error: errors.append(str(error)))
    phone.goto(ann.url)
    phone.fill("#join-form [name=name]", "Bob")
    phone.click("#join-form button[type=submit]")
    expect(phone.locator("#connection")).to_have_attribute("data-state", "live")
    phone.screenshot(path=screenshots / "room-390.png")
    phone.locator("#renders .shot img").first.tap()
    expect(phone.locator("#lightbox")).to_be_visible()
    expect(phone.locator("#lightbox-params")).to_contain_text("Steps: 4")
    phone.screenshot(path=screenshots / "room-lightbox-390.png")
    phone.locator("#lightbox").get_by_role("button", name="Next image").tap()
    expect(phone.locator("#lightbox .lightbox-count")).to_have_text("2 of 3")
    phone.locator("#lightbox").get_by_role("button", name="Close").tap()
    expect(phone.locator("#lightbox")).to_be_hidden()
    assert errors == []
    context.close()
    phone.context.close()


def test_the_room_shows_who_is_online_and_refuses_a_long_paste(server, browser, screenshots):
    errors = []

    def person(**context):
        page = browser.new_context(**(context or {"viewport": LAPTOP})).new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    ann = person()
    ann.goto(server + "/")
    ann.fill("#start-form [name=topic]", "circles and rings")
    ann.fill("#start-form [name=name]", "Ann")
    ann.click("#start-form button[type=submit]")
    ann.wait_for_url("**/p/*/")
    expect(ann.locator("#connection")).to_have_attribute("data-state", "live")
    here = ann.locator('#members .member[data-online="true"]')
    expect(here).to_have_count(1)
    expect(here).to_contain_text("Ann")

    # Bob joins on his phone, and opens a second tab: he is online once.
    bob = person(**PHONE)
    bob.goto(ann.url)
    bob.fill("#join-form [name=name]", "Bob")
    bob.click("#join-form button[type=submit]")
    expect(bob.locator("#connection")).to_have_attribute("data-state", "live")
    bob_row = ann.locator("#members .member", has_text="Bob")
    expect(bob_row).to_have_attribute("data-online", "true")
    expect(ann.locator("#online-count")).to_have_text("· 2 of 2 here")
    second_tab = bob.context.new_page()
    second_tab.goto(ann.url)
    expect(second_tab.locator("#connection")).to_have_attribute("data-state", "live")
    expect(second_tab.locator('#members .member[data-online="true"]')).to_have_count(2)
    second_tab.close()
    ann.wait_for_timeout(500)  # a closed tab of a member still here changes nothing
    expect(bob_row).to_have_attribute("data-online", "true")

    # A 5,000-character paste is kept whole and refused with its count, never cut.
    bob.locator("#prompt-text").fill("a red ring " * 454 + "a blue")
    expect(bob.locator("#prompt-chars")).to_have_text(
        "5,000 / 1,000 characters: shorten it by 4,000"
    )
    expect(bob.locator("#composer-submit")).to_be_disabled()
    assert len(bob.locator("#prompt-text").input_value()) == 5000
    bob.locator("#prompt-text").press("Control+Enter")  # refused as well
    expect(bob.locator("#renders-empty")).to_be_visible()
    bob.screenshot(path=screenshots / "room-long-paste-390.png")
    bob.locator("#prompt-text").fill("a red ring")
    expect(bob.locator("#prompt-chars")).to_be_hidden()
    expect(bob.locator("#composer-submit")).to_be_enabled()

    # Bob leaves: away in Ann's list, after a reload too.
    bob.close()
    expect(bob_row).to_have_attribute("data-online", "false")
    ann.reload()
    expect(ann.locator("#connection")).to_have_attribute("data-state", "live")
    bob_row = ann.locator("#members .member", has_text="Bob")
    expect(bob_row).to_have_attribute("data-online", "false")
    expect(ann.locator("#online-count")).to_have_text("· 1 of 2 here")

    # The Prompt Master (no facilitator, no mute first) removes Cat: her composer closes, and
    # says who did it; a reload says she was removed rather than offering to join.
    cat = person()
    cat.goto(ann.url)
    cat.fill("#join-form [name=name]", "Cat")
    cat.click("#join-form button[type=submit]")
    expect(cat.locator("#connection")).to_have_attribute("data-state", "live")
    ann.on("dialog", lambda dialog: dialog.accept())
    ann.locator("#members .member", has_text="Cat").get_by_role("button", name="Remove").click()
    expect(cat.locator("#muted-note")).to_have_text(
        "Ann removed you from this party: "
        "you can no longer write prompts, vote or add associations."
    )
    expect(cat.locator("#composer-submit")).to_be_disabled()
    expect(cat.locator("#prompt-text")).to_be_disabled()
    expect(cat.locator("#association-form button[type=submit]")).to_be_disabled()
    cat.screenshot(path=screenshots / "room-removed-1440.png")
    cat.reload()
    expect(cat.locator("#removed-panel")).to_contain_text("You were removed from this party")
    expect(cat.locator("#join-form")).to_have_count(0)
    assert errors == []


def test_on_a_phone_the_people_are_on_the_first_screen(server, browser, screenshots):
    """With renders in the room, a phone shows who is here without scrolling past them; the
    laptop keeps People at the top of its side column."""
    errors = []

    def person(name, url, **context):
        page = browser.new_context(**context).new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.fill("#join-form [name=name]", name)
        page.click("#join-form button[type=submit]")
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        return page

    ann = browser.new_context(viewport=LAPTOP).new_page()
    ann.on("pageerror", lambda error: errors.append(str(error)))
    ann.goto(server + "/")
    ann.fill("#start-form [name=topic]", "trees and rivers")
    ann.fill("#start-form [name=name]", "Ann")
    ann.uncheck("#start-form [name=steered]")
    ann.click("#start-form button[type=submit]")
    ann.wait_for_url("**/p/*/")
    expect(ann.locator("#connection")).to_have_attribute("data-state", "live")
    ann.locator("#model-notice").get_by_role("button", name="Dismiss this notice").click()
    ann.click("#params summary")
    ann.fill("#composer [name=steps]", "4")
    done = ann.locator('#renders .card[data-status="done"]')
    for renders, text in enumerate(("a green tree", "a blue river", "a red sun"), 1):
        ann.fill("#prompt-text", text)
        ann.click("#composer-submit")
        expect(done).to_have_count(renders, timeout=RENDER_TIMEOUT_MS)
    ann.click("#params summary")
    bob = person("Bob", ann.url, **PHONE)
    cat = person("Cat", ann.url, viewport=LAPTOP)
    expect(bob.locator("#online-count")).to_have_text("· 3 of 3 here")
    expect(bob.locator('#renders .card[data-status="done"]')).to_have_count(3)
    for page in (ann, bob):
        for img in page.locator("#renders .shot img").all():
            img.evaluate("img => img.decode()")
    ann.screenshot(path=screenshots / "room-people-1440.png")
    bob.screenshot(path=screenshots / "room-people-390.png")
    bob.screenshot(path=screenshots / "room-people-390-full.png", full_page=True)

    # The phone: who is here, above the renders and on the first screen.
    people = bob.locator("section:has(#members)")
    first_card = bob.locator("#renders .card").first
    assert people.bounding_box()["y"] < PHONE["viewport"]["height"]
    assert people.bounding_box()["y"] < first_card.bounding_box()["y"]
    summary = bob.locator("#people-summary")
    expect(summary).to_be_visible()
    for name in ("Ann", "Bob", "Cat"):
        expect(summary).to_contain_text(name)
    # Folded to one line of names; "show all" unfolds the list with the roles.
    expect(bob.locator("#members")).to_be_hidden()
    bob.get_by_role("button", name="show all").tap()
    expect(bob.locator("#members .member")).to_have_count(3)
    expect(bob.locator("#members")).to_be_visible()
    expect(bob.locator("#members .member", has_text="Ann")).to_contain_text("Prompt Master")
    assert people.bounding_box()["y"] < first_card.bounding_box()["y"]
    bob.screenshot(path=screenshots / "room-people-open-390.png")

    # The laptop: People heads the side column, beside the renders, the full list showing.
    assert "{#" not in ann.locator("body").inner_text()  # a template comment cut over lines
    ann_people = ann.locator("section:has(#members)")
    expect(ann.locator("#members")).to_be_visible()
    expect(ann.locator("#people-summary")).to_be_hidden()
    assert ann_people.bounding_box()["x"] > ann.locator("#renders").bounding_box()["x"] + 500
    assert ann_people.bounding_box()["y"] < LAPTOP["height"] / 3
    assert errors == []
    for page in (ann, bob, cat):
        page.context.close()


def test_on_a_phone_the_prompt_master_sees_the_proposals_on_the_first_screen(
    server, browser, screenshots
):
    """In a steered party the host, on a phone, finds what the others propose above the renders,
    and accepts it from there; the others' phones keep the proposals below, and the host's laptop
    keeps them in the side column."""
    errors = []

    def page_of(context):
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    ann_context = browser.new_context(**PHONE)
    ann, _ = start_party(ann_context, server, topic="boats at dawn", name="Ann")
    ann.on("pageerror", lambda error: errors.append(str(error)))
    ann.locator("#model-notice").get_by_role("button", name="Dismiss this notice").tap()
    ann.tap("#params summary")
    ann.fill("#composer [name=steps]", "4")
    done = ann.locator('#renders .card[data-status="done"]')
    for renders, text in enumerate(("a red boat", "a grey sea"), 1):
        ann.fill("#prompt-text", text)
        ann.tap("#composer-submit")
        expect(done).to_have_count(renders, timeout=RENDER_TIMEOUT_MS)
    ann.tap("#params summary")

    # Bob on a laptop, Cat on a phone: each proposes (in a steered party they cannot render).
    others = {}
    for name, text, context in (
        ("Bob", "a boat with a yellow sail", {"viewport": LAPTOP}),
        ("Cat", "two boats at dawn", PHONE),
    ):
        page = page_of(browser.new_context(**context))
        page.goto(ann.url)
        page.fill("#join-form [name=name]", name)
        page.click("#join-form button[type=submit]")
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(page.locator("#composer-submit")).to_have_text("Propose")
        page.fill("#prompt-text", text)
        page.click("#composer-submit")
        others[name] = page
    proposals = ann.locator("#proposals .proposal")
    expect(proposals).to_have_count(2)
    for img in ann.locator("#renders .shot img").all():
        img.evaluate("img => img.decode()")
    ann.screenshot(path=screenshots / "room-proposals-390.png")
    ann.screenshot(path=screenshots / "room-proposals-390-full.png", full_page=True)

    # The host's phone: the proposals on the first screen, above the composer and the renders.
    panel = ann.locator("#proposals-panel")
    first_card = ann.locator("#renders .card").first
    assert panel.bounding_box()["y"] < PHONE["viewport"]["height"]
    assert panel.bounding_box()["y"] < ann.locator("#composer").bounding_box()["y"]
    assert panel.bounding_box()["y"] < first_card.bounding_box()["y"]
    assert proposals.first.bounding_box()["y"] < PHONE["viewport"]["height"]
    # Cat's phone: she does not decide, so the proposals stay below the renders.
    cat = others["Cat"]
    expect(cat.locator("#proposals .proposal")).to_have_count(2)
    assert (
        cat.locator("#proposals-panel").bounding_box()["y"]
        > cat.locator("#renders .card").first.bounding_box()["y"]
    )

    # Accepted from up there, it renders, credited to its author; the other one still waits.
    bobs = proposals.filter(has_text="a yellow sail")
    bobs.get_by_role("button", name="Accept and render").tap()
    expect(done).to_have_count(3, timeout=RENDER_TIMEOUT_MS)
    expect(ann.locator("#renders .card").first).to_contain_text("by Bob")
    expect(proposals).to_have_count(1)
    assert panel.bounding_box()["y"] < first_card.bounding_box()["y"]

    # The same host on a laptop: the proposals in the side column beside the renders, as before.
    ann.set_viewport_size(LAPTOP)
    ann.evaluate("window.scrollTo(0, 0)")
    renders_box = ann.locator("#renders").bounding_box()
    assert panel.bounding_box()["x"] > renders_box["x"] + 500
    assert panel.bounding_box()["y"] > ann.locator("#people").bounding_box()["y"]
    ann.screenshot(path=screenshots / "room-proposals-1440.png")
    assert errors == []
    for page in (ann, *others.values()):
        page.context.close()
