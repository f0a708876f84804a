"""The party talks, in Chromium against `make run`: three people (the Prompt Master on a laptop,
a facilitator on a laptop, a participant on a phone) chat live with Enter, mention an image,
comment on it and react to it, talk about a prompt from the tree; the facilitator pins a question
(in the room and large on the stage, with the newest chat lines and their toggle), hides a
message (for everyone, after a reload too) and mutes the participant; a link to another site is
not clickable while one to this site is; the folded chat counts what is new. Screenshots at
1440×900 and 390×844 (PARTYHUB_SCREENSHOTS keeps them). Fixtures in browsing.py."""

import re
import sqlite3
from datetime import UTC, datetime

import pytest
from browsing import RENDER_TIMEOUT_MS, join, start_party
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

LAPTOP = {"viewport": {"width": 1440, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
HIDDEN = "message hidden by a facilitator"


def say(page, text):
    """Type a chat line as a person does and press Enter (Shift+Enter makes a new line)."""
    box = page.locator("#chat-text")
    lines = text.split("\n")
    box.click()
    for number, line in enumerate(lines):
        if number:
            page.keyboard.press("Shift+Enter")
        page.keyboard.type(line)
    page.keyboard.press("Enter")


def add_chat_lines(server, code, name, texts):
    """Chat lines by the member `name`, straight into the server's SQLite database."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(server.var / "partyhub.sqlite3") as db:
        party, member = db.execute(
            "SELECT p.id, m.id FROM partyhub_party p JOIN partyhub_member m ON m.party_id = p.id"
            " WHERE p.code = ? AND m.name = ?",
            (code, name),
        ).fetchone()
        db.executemany(
            "INSERT INTO partyhub_message (party_id, author_id, kind, text, hidden, client_id,"
            " created_at) VALUES (?, ?, 'chat', ?, 0, '', ?)",
            [(party, member, text, now) for text in texts],
        )


def chat_line(page, text):
    return page.locator("#chat-lines .talk-line:not(.pending)", has_text=text)


def test_the_party_talks(server, browser, screenshots):
    errors = []
    ann_context = browser.new_context(**LAPTOP)
    ann, code = start_party(ann_context, server, topic="loneliness", name="Ann", steered=False)
    ann.on("pageerror", lambda error: errors.append(f"Ann: {error}"))
    room = f"{server}/p/{code}/"
    fay = join(browser, room, "Fay", errors, **LAPTOP)
    bob = join(browser, room, "Bob", errors, **PHONE)
    ann.get_by_label("Role of Fay").select_option("facilitator")
    expect(fay.locator("#question-edit")).to_be_visible()  # she may pin a question now
    expect(bob.locator("#question")).to_be_hidden()  # nothing pinned, nothing to do about it

    # One image to talk about.
    ann.click("#params summary")
    ann.fill("#composer [name=steps]", "4")
    ann.fill("#prompt-text", "two lonely stars")
    ann.click("#composer-submit")
    for page in (ann, fay, bob):
        expect(page.locator('#renders .card[data-status="done"]')).to_have_count(
            1, timeout=RENDER_TIMEOUT_MS
        )
    ann.click("#params summary")

    # Chat both ways, with Enter; Shift+Enter is a new line within one.
    say(ann, "hello everyone")
    expect(chat_line(fay, "hello everyone")).to_have_count(1)
    expect(chat_line(fay, "hello everyone").locator(".talk-author")).to_have_text("Ann")
    expect(chat_line(fay, "hello everyone").locator(".talk-role")).to_have_text("Prompt Master")
    expect(ann.locator("#chat-text")).to_have_value("")
    bob.locator("#chat-jump").tap()  # on a phone the chat lies below the renders
    expect(bob.locator("#chat-text")).to_be_in_viewport()
    say(bob, "hi from the back row")
    expect(chat_line(ann, "hi from the back row")).to_have_count(1)
    expect(chat_line(ann, "hi from the back row").locator(".talk-role")).to_have_count(0)
    say(fay, "first line\nsecond line")
    two_lines = chat_line(bob, "first line").locator(".talk-text")
    expect(two_lines).to_have_text("first line\nsecond line")
    assert two_lines.evaluate("p => getComputedStyle(p).whiteSpace") == "pre-wrap"
    assert two_lines.get_attribute("dir") == "auto"

    # Ann mentions the image: "about:" it in her composer, a thumbnail in the line, and a click
    # on it opens the image for the others.
    shot = ann.locator("#renders .shot").first
    shot.hover()
    shot.get_by_role("button", name="Mention in chat").click()
    expect(ann.locator("#chat-about img")).to_be_visible()
    expect(ann.locator("#chat-text")).to_be_focused()
    ann.keyboard.type("look at these two")
    ann.keyboard.press("Enter")
    expect(ann.locator("#chat-about")).to_be_hidden()
    mentioned = chat_line(fay, "look at these two").locator(".mention-image img")
    expect(mentioned).to_be_visible()
    image_url = ann.locator("#renders .shot img").first.get_attribute("src")
    assert mentioned.get_attribute("src") == image_url
    mentioned.click()
    expect(fay.locator("#lightbox")).to_be_visible()
    assert fay.locator("#lightbox-img").get_attribute("src") == image_url

    # Fay reacts with love in the lightbox; Bob comments from the card's count, with Enter.
    fay.locator('#lightbox-talk button[data-reaction="love"]').click()
    expect(fay.locator('#lightbox-talk button[data-reaction="love"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    ann_love = ann.locator('#renders .shot button[data-reaction="love"]').first
    expect(ann_love).to_have_text("❤️1")
    expect(ann_love).to_have_attribute("aria-pressed", "false")
    bob.locator("#renders .shot .comment-count").first.tap()
    expect(bob.locator("#lightbox")).to_be_visible()
    bob.locator("#lightbox-talk textarea").fill("they look so far apart")
    bob.locator("#lightbox-talk textarea").press("Enter")
    expect(bob.locator("#lightbox-talk .thread .talk-line:not(.pending)")).to_have_count(1)
    expect(bob.locator("#lightbox-talk textarea")).to_have_value("")
    expect(ann.locator("#renders .shot .comment-count").first).to_have_text("💬 1")
    expect(fay.locator("#lightbox-talk .thread")).to_contain_text("they look so far apart")
    fay.locator("#lightbox-img").evaluate("img => img.decode()")
    fay.screenshot(path=screenshots / "talk-lightbox-1440.png")
    bob.locator("#lightbox-img").evaluate("img => img.decode()")
    bob.screenshot(path=screenshots / "talk-lightbox-390.png")
    bob.locator("#lightbox").get_by_role("button", name="Close").tap()
    fay.keyboard.press("Escape")

    # A prompt's thread, from the tree's 💬: a comment there counts on everyone's tree.
    ann.locator("#prompt-tree .pt-talk").first.click()
    dialog = ann.locator("#prompt-thread")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#prompt-thread-text")).to_have_text("two lonely stars")
    dialog.locator("textarea").fill("what if they were holding hands?")
    dialog.locator("textarea").press("Enter")
    expect(dialog.locator(".thread .talk-line:not(.pending)")).to_have_count(1)
    dialog.locator('button[data-reaction="think"]').click()
    expect(dialog.locator('button[data-reaction="think"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(fay.locator("#prompt-tree .pt-talk text")).to_have_text(re.compile(r"💬 1\s+🤔1"))
    ann.screenshot(path=screenshots / "talk-prompt-thread-1440.png")
    ann.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # Links: this site's own are links, another site's address stays text.
    say(
        ann,
        f"the stage is at {server}/p/{code}/stage/ or /p/{code}/replay/, not https://example.com/x",
    )
    line = chat_line(bob, "the stage is at")
    expect(line.locator("a.talk-link")).to_have_count(2)
    assert line.locator("a.talk-link").first.get_attribute("href") == f"{server}/p/{code}/stage/"
    expect(line.locator("a", has_text="example.com")).to_have_count(0)
    expect(line.locator(".talk-text")).to_contain_text("https://example.com/x")
    say(bob, "nice")
    expect(chat_line(ann, "nice")).to_have_count(1)

    # The facilitator pins a question: above the room for everyone, large on the stage with the
    # newest chat lines. Bob may not pin one.
    fay.click("#question-edit")
    fay.fill("#question-form [name=text]", "What does loneliness sound like?")
    fay.click("#question-form button[type=submit]")
    for page in (ann, fay, bob):
        expect(page.locator("#question-text")).to_have_text("What does loneliness sound like?")
    expect(bob.locator("#question-actions")).to_be_hidden()
    stage = ann_context.new_page()
    stage.on("pageerror", lambda error: errors.append(f"stage: {error}"))
    stage.goto(f"{room}stage/")
    expect(stage.locator("#stage-question-text")).to_have_text("What does loneliness sound like?")
    stage_lines = stage.locator("#stage-chat-lines .stage-chat-line")
    expect(stage_lines).to_have_count(5)
    expect(stage_lines.last).to_contain_text("nice")
    expect(stage_lines.first).to_contain_text("hi from the back row")  # the newest five
    stage.locator(".stage-shot").first.evaluate("img => img.decode()")
    stage.screenshot(path=screenshots / "talk-stage-1440.png")

    # The facilitator hides Bob's line: gone for everyone (the stage too), after a reload also.
    hidden_line = chat_line(fay, "hi from the back row")
    hidden_line.get_by_role("button", name="Hide").click()
    for page in (ann, bob):
        expect(page.locator("#chat-lines .is-hidden .talk-text")).to_have_text(HIDDEN)
        expect(page.locator("#chat-lines")).not_to_contain_text("hi from the back row")
    expect(fay.locator("#chat-lines .is-hidden").get_by_role("button")).to_have_text("Show again")
    expect(bob.locator("#chat-lines .talk-hide")).to_have_count(0)  # only those who moderate
    expect(stage.locator("#stage-chat-lines")).not_to_contain_text("hi from the back row")
    bob.reload()
    expect(bob.locator("#connection")).to_have_attribute("data-state", "live")
    expect(bob.locator("#chat-lines .is-hidden .talk-text")).to_have_text(HIDDEN)
    expect(bob.locator("#chat-lines")).not_to_contain_text("hi from the back row")
    # Shown again, it is back for everyone; hidden once more, gone again.
    fay.locator("#chat-lines .is-hidden").get_by_role("button", name="Show again").click()
    expect(chat_line(bob, "hi from the back row")).to_have_count(1)
    chat_line(fay, "hi from the back row").get_by_role("button", name="Hide").click()
    expect(bob.locator("#chat-lines .is-hidden .talk-text")).to_have_text(HIDDEN)

    # The stage's chat hides with its toggle, and stays hidden on this browser; ?chat=0 too.
    stage.get_by_role("button", name="Hide chat").click()
    expect(stage.locator("#stage-chat-lines")).to_be_hidden()
    stage.reload()
    expect(stage.locator("#stage-question-text")).to_be_visible()
    expect(stage.get_by_role("button", name="Show chat")).to_be_visible()
    expect(stage.locator("#stage-chat-lines")).to_be_hidden()
    fay_stage = fay.context.new_page()
    fay_stage.goto(f"{room}stage/?chat=0")
    expect(fay_stage.locator("#stage-question-text")).to_be_visible()
    expect(fay_stage.locator("#stage-chat-lines")).to_be_hidden()
    fay_stage.close()
    stage.close()

    # Folded, the chat counts what comes, on its header and the top bar's Chat button; the
    # fold is remembered; Chat unfolds it at the newest line.
    ann.click("#chat-fold")
    expect(ann.locator("#chat-lines")).to_be_hidden()
    say(fay, "one more thing")
    expect(ann.locator("#chat-unread")).to_have_text("1")
    say(fay, "and another")
    expect(ann.locator("#chat-unread")).to_have_text("2")
    expect(ann.locator("#chat-jump-count")).to_have_text("2")
    ann.reload()
    expect(ann.locator("#connection")).to_have_attribute("data-state", "live")
    expect(ann.locator("#chat-lines")).to_be_hidden()
    ann.click("#chat-jump")
    expect(chat_line(ann, "and another")).to_be_in_viewport()
    expect(ann.locator("#chat-unread")).to_be_hidden()
    expect(ann.locator("#chat-jump-count")).to_be_hidden()

    # Past 500 characters, or 12 lines, the count says by how much; nothing is cut, nothing is
    # sent.
    long = "a" * 510
    ann.locator("#chat-text").fill(long)
    expect(ann.locator("#chat-chars")).to_have_text("510 / 500: shorten it by 10")
    expect(ann.locator("#chat-send")).to_be_disabled()
    ann.locator("#chat-text").press("Enter")
    expect(ann.locator("#chat-text")).to_have_value(long)
    tall = "\n".join(["a line"] * 13)
    ann.locator("#chat-text").fill(tall)
    expect(ann.locator("#chat-chars")).to_have_text("13 / 12 lines: take out 1 line break")
    expect(ann.locator("#chat-send")).to_be_disabled()
    ann.locator("#chat-text").press("Enter")
    expect(ann.locator("#chat-text")).to_have_value(tall)
    ann.locator("#chat-text").fill("")

    # Muted, Bob reads and reacts but writes nothing.
    fay.locator("#members .member", has_text="Bob").get_by_role("button", name="Mute").click()
    expect(bob.locator("#chat-text")).to_be_disabled()
    expect(bob.locator("#chat-note")).to_contain_text("muted")
    expect(bob.locator('#renders .shot button[data-reaction="fire"]').first).to_be_enabled()

    # A long conversation: the room loads the newest 50 lines and pages back to the rest, the
    # line read staying in place. Written straight into the server's database, past the limit
    # on messages a minute.
    add_chat_lines(server, code, "Fay", [f"an earlier line {n:02d}" for n in range(1, 61)])
    ann.reload()
    expect(ann.locator("#connection")).to_have_attribute("data-state", "live")
    expect(ann.locator("#chat-lines .talk-line")).to_have_count(50)
    expect(chat_line(ann, "an earlier line 60")).to_be_in_viewport()
    ann.locator("#chat-scroll").evaluate("box => box.scrollTop = 0")
    ann.click("#chat-earlier")
    expect(ann.locator("#chat-lines .talk-line")).to_have_count(68)
    expect(ann.locator("#chat-earlier")).to_be_hidden()
    expect(chat_line(ann, "an earlier line 11")).to_be_in_viewport()
    expect(ann.locator("#chat-lines .talk-line").first).to_contain_text("hello everyone")

    ann.evaluate("window.scrollTo(0, 0)")
    ann.screenshot(path=screenshots / "talk-room-1440.png")
    bob.evaluate("window.scrollTo(0, 0)")
    bob.screenshot(path=screenshots / "talk-room-390.png")
    bob.screenshot(path=screenshots / "talk-room-390-full.png", full_page=True)
    bob.locator("#chat-jump").tap()
    expect(bob.locator("#chat-send")).to_be_in_viewport(ratio=1)
    bob.screenshot(path=screenshots / "talk-chat-390.png")
    assert errors == []
