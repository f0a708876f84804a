"""The browser client end to end: Debian's headless Chromium against a real `runserver` process in
the embedded default mode (SQLite, in-memory channel layer, the in-process worker, the offline
model). The server, browser and screenshots fixtures are in browsing.py."""

import json
import re
import sqlite3
import zipfile

import pytest
from browsing import RENDER_TIMEOUT_MS
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_it_runs_a_party_from_home_page_to_export(server, browser, screenshots):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page_errors = []
    page = context.new_page()
    page.on("pageerror", lambda error: page_errors.append(str(error)))

    # Home: the offline model's notice, then start a party.
    page.goto(server + "/")
    expect(page.locator(".notice")).to_contain_text("world of drawn shapes")
    page.screenshot(path=screenshots / "home.png", full_page=True)
    page.fill("#start-form [name=topic]", "loneliness")
    page.fill("#start-form [name=title]", "A quiet evening")
    page.fill("#start-form [name=name]", "Ann")
    page.click("#start-form button[type=submit]")
    page.wait_for_url("**/p/*/")
    code = page.url.rstrip("/").rsplit("/", 1)[-1]
    expect(page.locator(".join-code-value")).to_have_text(code)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#members")).to_contain_text("Ann")
    expect(page.locator("#model-notice")).to_contain_text("world of drawn shapes")

    # A first prompt with a small parameter change: only `steps` goes to the server.
    page.fill("#prompt-text", "loneliness")
    expect(page.locator("#prompt-tokens")).to_have_text("7 / 22 tokens")  # the offline model's
    page.click("#params summary")
    page.fill("#composer [name=steps]", "2")
    page.click("#composer button[type=submit]")
    first_image = page.locator(".card .shot img").first
    expect(first_image).to_be_visible(timeout=RENDER_TIMEOUT_MS)

    # Refine the image: the composer takes its prompt and the new prompt becomes its child.
    page.locator(".shot").first.get_by_role("button", name="Refine").click()
    expect(page.locator("#refining")).to_be_visible()
    expect(page.locator("#prompt-text")).to_have_value("loneliness")
    page.fill("#prompt-text", "two old people on a bench")
    page.click("#composer button[type=submit]")
    refined = "two old people on a bench"

    cards = page.locator("#renders .card")
    expect(page.locator('#renders .card[data-status="done"]')).to_have_count(
        2, timeout=RENDER_TIMEOUT_MS
    )
    # Newest first, and nothing shown twice (each event applied once, each render one card).
    expect(cards).to_have_count(2)
    expect(cards.first.locator(".card-prompt")).to_have_text(refined)
    expect(page.locator("#renders .shot img")).to_have_count(2)
    expect(page.locator("#refining")).to_be_hidden()
    expect(page.locator("#prompt-text")).to_have_value("")
    # The tree: the root, then its refinement with the words it added highlighted.
    nodes = page.locator("#prompt-tree svg .pt-node")
    expect(nodes).to_have_count(2)
    expect(nodes.first).to_contain_text("loneliness")
    expect(nodes.nth(1).locator(".pt-added")).to_have_text(refined.split())
    page.locator("#renders .shot img").nth(1).evaluate("img => img.decode()")
    page.screenshot(path=screenshots / "room.png", full_page=True)

    # A reload resumes from the snapshot: still two cards, two images.
    page.reload()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(cards).to_have_count(2)
    expect(page.locator("#renders .shot img")).to_have_count(2)

    # The stage shows the newest image and the join code.
    stage = context.new_page()
    stage.goto(f"{server}/p/{code}/stage/")
    expect(stage.locator(".stage-code")).to_have_text(code)
    expect(stage.locator("#stage-image img")).to_be_visible()
    expect(stage.locator("#stage-prompt")).to_have_text(refined)
    stage.locator("#stage-image img").evaluate("img => img.decode()")
    stage.screenshot(path=screenshots / "stage.png")
    stage.close()

    # The export: the gallery, the post, the images and a manifest with the prompt tree.
    with page.expect_download() as download_info:
        page.click("#export-link")
    with zipfile.ZipFile(download_info.value.path()) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
    assert {"manifest.json", "index.html", "post.md"} <= set(names)
    assert len([n for n in names if n.startswith("images/") and n.endswith(".png")]) >= 2
    first, second = manifest["prompts"]
    assert first["parent"] is None
    assert second["parent"] == first["id"]

    assert page_errors == []
    context.close()


def test_the_composer_redraws_repaints_and_walks(server, browser, screenshots):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page_errors = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.goto(server + "/")
    page.fill("#start-form [name=topic]", "distant planets")
    page.fill("#start-form [name=name]", "Ann")
    page.click("#start-form button[type=submit]")
    page.wait_for_url("**/p/*/")
    # Render sends over the room's socket: a click before it is open only says "not connected".
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    done = page.locator('#renders .card[data-status="done"]')

    page.fill("#prompt-text", "a ringed planet")
    page.click("#composer button[type=submit]")
    expect(done).to_have_count(1, timeout=RENDER_TIMEOUT_MS)

    # "Use" makes the image the source of a redraw.
    page.locator(".shot").first.get_by_role("button", name="Use").click()
    expect(page.locator("#source-img")).to_be_visible()
    page.fill("#prompt-text", "a ringed planet in winter")
    page.click("#composer button[type=submit]")
    expect(done).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#renders .card").first.locator(".card-meta")).to_contain_text("redrawn")

    # A repaint needs a painted mask: refused in the browser without one, rendered with one.
    page.check("input[name=mode][value=inpaint]")
    page.fill("#prompt-text", "a ringed planet with a moon")
    page.click("#composer button[type=submit]")
    expect(page.locator("#toasts")).to_contain_text("Paint over")
    box = page.locator("#mask-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6, steps=5)
    page.mouse.up()
    page.click("#composer button[type=submit]")
    expect(done).to_have_count(3, timeout=RENDER_TIMEOUT_MS)
    expect(page.locator("#renders .card").first.locator(".card-meta")).to_contain_text("repainted")

    # A walk shows its frames and their animation.
    page.check("input[name=mode][value=walk]")
    # The offline model's default sampler, Euler a, adds noise at every step: the walk ends
    # near its goal, and the composer says so.
    expect(page.locator("#walk-sampler-note")).to_be_visible()
    page.fill("#prompt-text", "a ringed planet")
    page.fill("#composer [name=walk_to]", "a blue moon")
    page.fill("#composer [name=frames]", "3")
    page.click("#composer button[type=submit]")
    expect(done).to_have_count(4, timeout=RENDER_TIMEOUT_MS)
    newest = page.locator("#renders .card").first
    expect(newest.locator(".card-meta")).to_contain_text("to “a blue moon”")  # where it ends
    expect(newest.locator("img.animation")).to_be_visible()
    expect(newest.locator(".shot img")).to_have_count(3)

    # In walk mode "Use" starts the walk at that image: only one made from text alone can be
    # made again from its prompt and seed, so a redrawn one is refused with a reason.
    cards = page.locator("#renders .card")
    cards.nth(2).locator(".shot").first.get_by_role("button", name="Use").click()  # the redraw
    expect(page.locator("#toasts")).to_contain_text("this one is redrawn")
    cards.nth(3).locator(".shot").first.get_by_role("button", name="Use").click()  # the first
    expect(page.locator("#prompt-text")).to_have_value("a ringed planet")
    expect(page.locator("#walk-from")).to_contain_text("Starts at the image you picked")
    seed = page.locator("#composer [name=seed]").input_value()
    page.click("#composer button[type=submit]")
    expect(done).to_have_count(5, timeout=RENDER_TIMEOUT_MS)
    with sqlite3.connect(server.var / "partyhub.sqlite3") as db:
        rows = db.execute(
            "SELECT p.id, p.source_id, i.seed FROM partyhub_prompt p JOIN partyhub_render r "
            "ON r.prompt_id = p.id JOIN partyhub_image i ON i.render_id = r.id "
            "WHERE p.party_id = (SELECT MAX(party_id) FROM partyhub_prompt) ORDER BY p.id, i.id"
        ).fetchall()
    first, walk = rows[0], rows[-1]
    assert walk[1] == first[0]  # filed under the image it starts at
    assert seed == str(first[2])  # the composer held the seed of the image picked
    # The tree draws the walk inside its source's branch, with its first frame as thumbnail.
    node = page.locator(f'#prompt-tree g[data-prompt="{walk[0]}"]')
    expect(node.locator("image")).to_have_count(1)
    root = page.locator(f'#prompt-tree g[data-prompt="{first[0]}"]').bounding_box()
    assert node.bounding_box()["x"] > root["x"]
    page.screenshot(path=screenshots / "modes.png", full_page=True)
    assert page_errors == []
    context.close()


def test_a_new_user_watches_a_stream_signs_up_and_submits(server, browser, screenshots):
    # An anonymous viewer watches a seeded stream of the offline install while a new user signs
    # up and submits: off the stream's theme first (the offline CLIP refuses it), then on it.
    watcher = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    watcher.goto(f"{server}/s/circles-and-rings/")
    expect(watcher.locator("#connection")).to_have_attribute("data-state", "live")
    expect(watcher.locator("#submit-form")).to_have_count(0)  # anonymous: no form, a link

    author = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    author.goto(f"{server}/s/circles-and-rings/")
    author.get_by_role("link", name="sign up").click()
    author.fill("#id_username", "mia")
    author.fill("#id_password1", "a long enough passphrase 42")
    author.fill("#id_password2", "a long enough passphrase 42")
    author.get_by_role("button", name="Create the account").click()
    expect(author).to_have_url(f"{server}/s/circles-and-rings/")
    author.fill("#submit-text", "a green square above a yellow star")
    author.get_by_role("button", name="Submit").click()
    expect(author.locator("#submit-status")).to_contain_text("too far from it")
    author.fill("#submit-text", "two small red circles on a blue background")
    author.get_by_role("button", name="Submit").click()
    expect(author.locator("#submit-status")).to_have_text(re.compile("Queued|Rendering next"))

    # The image reaches the anonymous viewer live, bound to the topic, with its author.
    # Mia's own shot: the autopilot may reuse her words in prompts of its own.
    shot = watcher.locator(".stream-shot", has_text="two small red circles on a blue background")
    shot = shot.filter(has=watcher.locator(".stream-author", has_text="by mia")).first
    expect(shot).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    expect(shot.locator(".stream-author")).to_have_text("by mia")
    expect(shot.locator("img")).to_have_js_property("complete", True)
    expect(watcher.locator("#viewers")).to_contain_text("2 watching", timeout=15_000)
    watcher.screenshot(path=screenshots / "stream-watcher.png")


def test_a_facilitator_mutes_and_removes_people_in_the_room(server, browser, screenshots):
    def person(name, url=None):
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        if url:
            page.goto(url)
            page.fill("#join-form [name=name]", name)
            page.click("#join-form button[type=submit]")
            expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        return page

    ann = person("Ann")
    ann.goto(server + "/")
    ann.fill("#start-form [name=topic]", "crowds")
    ann.fill("#start-form [name=name]", "Ann")
    ann.click("#start-form button[type=submit]")
    ann.wait_for_url("**/p/*/")
    expect(ann.locator("#connection")).to_have_attribute("data-state", "live")
    fay, tom = person("Fay", ann.url), person("Tom", ann.url)

    # Only the Prompt Master sees role menus; she makes Fay the facilitator.
    expect(fay.locator(".role-select")).to_have_count(0)
    ann.get_by_label("Role of Fay").select_option("facilitator")
    tom_row = fay.locator("#members .member", has_text="Tom")
    expect(tom_row.get_by_role("button", name="Mute")).to_be_visible()
    expect(tom.locator("#members button")).to_have_count(0)  # a participant moderates no one

    tom_row.get_by_role("button", name="Mute").click()
    expect(tom.locator("#muted-note")).to_be_visible()
    expect(tom.locator("#composer button[type=submit]")).to_be_disabled()
    expect(ann.locator("#members .member", has_text="Tom")).to_contain_text("muted")
    fay.screenshot(path=screenshots / "facilitator.png", full_page=True)

    fay.on("dialog", lambda dialog: dialog.accept())
    tom_row.get_by_role("button", name="Remove").click()
    expect(ann.locator("#members .member", has_text="Tom")).to_have_count(0)
    expect(tom.locator("#connection")).to_have_attribute("data-state", "closed")


def test_three_people_play_a_whole_party(server, browser, screenshots):
    """Ann hosts (Prompt Master), Eve curates (Art Expert), Bob takes part: each in a browser
    context of their own, as three phones and laptops in one room would be."""
    errors = []

    def person(name):
        viewport = {"width": 1280, "height": 900}
        page = browser.new_context(viewport=viewport, accept_downloads=True).new_page()
        page.on("pageerror", lambda error: errors.append(f"{name}: {error}"))
        return page

    def join_by_code(page, name, code):
        page.goto(server + "/")
        page.fill("#join-form [name=code]", code.lower())  # typed as people type it
        page.click("#join-form button[type=submit]")
        page.fill("#join-form [name=name]", name)
        page.click("#join-form button[type=submit]")
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")

    ann, eve, bob = person("Ann"), person("Eve"), person("Bob")
    ann.goto(server + "/")
    ann.fill("#start-form [name=topic]", "loneliness")
    ann.fill("#start-form [name=name]", "Ann")
    expect(ann.locator("#start-form [name=steered]")).to_be_checked()
    ann.click("#start-form button[type=submit]")
    ann.wait_for_url("**/p/*/")
    expect(ann.locator("#connection")).to_have_attribute("data-state", "live")
    code = ann.locator(".join-code-value").inner_text()
    join_by_code(eve, "Eve", code)
    join_by_code(bob, "Bob", code)
    ann.get_by_label("Role of Eve").select_option("art_expert")
    expect(eve.locator("#members .member", has_text="Eve")).to_contain_text("Art Expert")

    # Associations: the same words from two people count twice on everyone's board.
    for page, words in ((bob, ["winter light", "an empty chair"]), (eve, ["Winter light"])):
        for word in words:
            page.fill("#association-form [name=text]", word)
            page.click("#association-form button[type=submit]")
    winter = ann.locator("#associations .word", has_text="winter light")
    expect(winter.locator(".word-count")).to_have_text("2")
    expect(ann.locator("#associations .word")).to_have_count(2)

    # Ann composes from a word of the board and an entry of the palette, and renders.
    # The offline model reads 22 tokens: the counter says when a click reaches them.
    ann.fill("#prompt-text", "a couple")
    winter.click()
    ann.locator("#palette .chip", has_text="sepia").click()
    first = "a couple, winter light, sepia"
    expect(ann.locator("#prompt-text")).to_have_value(first)
    expect(ann.locator("#prompt-tokens")).to_have_text("22 / 22 tokens")
    ann.click("#composer-submit")
    expect(bob.locator('#renders .card[data-status="done"]')).to_have_count(
        1, timeout=RENDER_TIMEOUT_MS
    )

    # Bob may not render in a steered party: he refines from the tree and proposes.
    expect(bob.locator("#composer-submit")).to_have_text("Propose")
    bob.locator("#prompt-tree svg .pt-node").first.click()
    expect(bob.locator("#prompt-text")).to_have_value(first)
    refined = "a couple apart, sepia"
    bob.fill("#prompt-text", refined)
    bob.click("#composer-submit")
    proposal = ann.locator("#proposals .proposal")
    expect(proposal).to_contain_text(refined)
    expect(eve.locator("#proposals .proposal button")).to_have_count(0)  # only Ann decides
    expect(bob.locator("#prompt-tree svg .pt-proposed")).to_have_count(1)
    ann.screenshot(path=screenshots / "party-proposal.png", full_page=True)
    proposal.get_by_role("button", name="Accept and render").click()
    expect(ann.locator('#renders .card[data-status="done"]')).to_have_count(
        2, timeout=RENDER_TIMEOUT_MS
    )
    newest = eve.locator("#renders .card").first
    expect(newest).to_contain_text("by Bob")
    added = eve.locator("#prompt-tree svg .pt-node").nth(1).locator(".pt-added")
    expect(added).to_have_text(["apart,"])

    # Stars from everyone; Eve shortlists and picks with a note, while Bob's star redraws the
    # card she writes it in.
    for page in (ann, eve):
        page.locator("#renders .card").first.locator("button.vote").click()
    expect(bob.locator("#renders .card").first.locator("button.vote")).to_have_text("☆ 2")
    expect(bob.locator("button.pick")).to_have_count(0)  # curation is Eve's (and Ann's)
    shot = eve.locator("#renders .card").first.locator(".shot")
    shot.get_by_role("button", name="Shortlist").click()
    expect(shot.get_by_role("button", name="✓ Shortlisted")).to_be_visible()
    shot.get_by_role("button", name="Pick…").click()
    eve.fill(".note-form [name=note]", "they almost touch")
    bob.locator("#renders .card").first.locator("button.vote").click()
    expect(shot.locator("button.vote")).to_have_text("★ 3")
    expect(eve.locator(".note-form [name=note]")).to_have_value("they almost touch")
    eve.click(".note-form button[type=submit]")
    expect(bob.locator(".shot.picked .pick-note")).to_contain_text("they almost touch")
    bob.click('#render-sort [data-filter="picked"]')
    expect(bob.locator("#renders .shot")).to_have_count(1)
    bob.click('#render-sort [data-sort="votes"]')
    expect(bob.locator("#renders .card").first).to_contain_text(refined)
    eve.screenshot(path=screenshots / "party-curated.png", full_page=True)

    # Ann publishes the gallery: everyone's room links it, and a stranger sees the pick first.
    expect(bob.locator("#publish-toggle")).to_be_hidden()
    ann.click("#publish-toggle")
    expect(bob.locator("#gallery-link")).to_be_visible()
    expect(ann.locator("#publish-toggle")).to_have_text("Unpublish")
    stranger = browser.new_context().new_page()
    stranger.goto(f"{server}/g/{code}/")
    expect(stranger.locator("body")).to_contain_text("they almost touch")
    og_image = stranger.locator('meta[property="og:image"]').get_attribute("content")
    assert og_image.startswith(server + "/media/")
    stranger.screenshot(path=screenshots / "gallery.png", full_page=True)
    ann.on("dialog", lambda dialog: dialog.accept())
    ann.click("#publish-toggle")
    expect(bob.locator("#gallery-link")).to_be_hidden()
    assert stranger.goto(f"{server}/g/{code}/").status == 404

    # Ann exports: the publication puts the pick and its note first.
    with ann.expect_download() as download_info:
        ann.click("#export-link")
    with zipfile.ZipFile(download_info.value.path()) as archive:
        index = archive.read("index.html").decode()
        post = archive.read("post.md").decode()
        manifest = json.loads(archive.read("manifest.json"))
    assert "they almost touch" in index and "they almost touch" in post
    picked = [image for image in manifest["images"] if image["picked"]]
    assert [image["votes"] for image in picked] == [3]
    assert errors == []
