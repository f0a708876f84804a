"""A sweep, in Chromium against `make run`: the Prompt Master draws one prompt across three
artists of the palette and two seeds from the composer; a member on a laptop and one on a phone
see ONE grid card, labelled by its values, whose every cell fills with its image; a member stars a
cell and refines it (the composer takes that cell's prompt); the prompt tree shows the sweep as
one group that opens onto its cells; the stage shows the grid large; a 5 × 4 sweep is refused in
the composer before it is sent, and the server's refusal shows should it be sent anyway; the
replay tells the sweep as one entry. Screenshots at 1440×900 and 390×844 (PARTYHUB_SCREENSHOTS
keeps them). Fixtures in browsing.py."""

import re

import pytest
from browsing import RENDER_TIMEOUT_MS, join, start_party
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

LAPTOP = {"viewport": {"width": 1440, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
ARTISTS = ["Edvard Munch", "Hokusai", "Frida Kahlo"]
STYLES = ["ukiyo-e", "art nouveau", "surrealism", "impressionism", "cubism"]
TECHNIQUES = ["watercolor", "pastel", "charcoal", "linocut"]
TEXT = "a red star above a blue square"


def loaded(page):
    """Every picture on the page decoded, for a screenshot that shows them."""
    page.evaluate("Promise.all([...document.images].map((img) => img.decode().catch(() => null)))")


def test_a_sweep_is_one_labelled_grid(server, browser, screenshots):
    errors = []
    ann, code = start_party(browser.new_context(**LAPTOP), server, topic="chairs", name="Ann")
    ann.on("pageerror", lambda error: errors.append(f"Ann: {error}"))
    room = f"{server}/p/{code}/"
    bea = join(browser, room, "Bea", errors, **LAPTOP)
    cy = join(browser, room, "Cy", errors, **PHONE)
    stage = ann.context.new_page()  # on the projector's laptop, Ann's browser
    stage.on("pageerror", lambda error: errors.append(f"stage: {error}"))
    stage.goto(room + "stage/")
    expect(stage.locator("#connection")).to_have_attribute("data-state", "live")

    # The party is steered: only the Prompt Master sweeps, and the others are told why.
    expect(bea.locator("#sweep-toggle")).to_be_disabled()
    why = re.compile("only they sweep")
    expect(bea.locator("#sweep-toggle-label")).to_have_attribute("title", why)

    # Ann sweeps a small, quick prompt across three artists of the palette and two seeds.
    ann.click("#params summary")
    for name, value in (("width", "64"), ("height", "64"), ("steps", "3")):
        ann.fill(f"#composer [name={name}]", value)
    ann.click("#params summary")
    ann.fill("#prompt-text", TEXT)
    ann.check("#sweep-toggle")
    submit = ann.locator("#composer-submit")
    expect(submit).to_have_text("Render the sweep")
    across = ann.locator('.sweep-axis[data-axis="x"]')
    expect(ann.get_by_label("Sweep across (columns)")).to_have_value("artist")
    count = ann.locator("#sweep-count")
    expect(count).to_have_attribute("data-ready", "false")  # nothing picked yet
    # The axes' plurals come from the server's rules (sweep_rules), as the replay says them.
    expect(count).to_have_text("0 cells: pick at least 2 artists across")
    expect(submit).to_be_disabled()
    for artist in ARTISTS:
        across.get_by_role("button", name=artist).click()
    expect(across.locator(".chip.on")).to_have_text([f"{n}{a}" for n, a in enumerate(ARTISTS, 1)])
    expect(count).to_have_text("3 cells, one render each with the same seed")
    ann.get_by_label("Sweep down (rows)").select_option("seed")
    expect(count).to_have_text("3 × 0 = 0 cells: pick at least 2 seeds down, or sweep across only")
    ann.get_by_label("Add a value down").fill("1, 2")
    ann.get_by_label("Add a value down").press("Enter")  # adds them; it does not render
    expect(ann.locator('.sweep-axis[data-axis="y"] .chip.on')).to_have_text(["1seed 1", "2seed 2"])
    expect(count).to_have_text("3 × 2 = 6 cells, one render each")
    expect(submit).to_be_enabled()
    ann.locator("#composer").screenshot(path=screenshots / "sweep-composer-1440.png")
    submit.click()
    expect(ann.locator("#prompt-text")).to_have_value("")  # sent and taken

    # Bea sees one grid card, not six loose ones, labelled by the values; every cell fills.
    card = bea.locator("#renders .sweep-card")
    expect(card).to_have_count(1)
    expect(card.locator(".sweep-eyebrow")).to_have_text("Sweep · artist × seed")
    expect(card.locator(".card-prompt")).to_have_text(TEXT)
    expect(card.locator("thead th.sweep-col")).to_have_text(ARTISTS)
    expect(card.locator("tbody th.sweep-row")).to_have_text(["seed 1", "seed 2"])
    shots = card.locator(".sweep-cell .shot img")
    expect(shots).to_have_count(6, timeout=RENDER_TIMEOUT_MS)
    expect(card.locator(".sweep-status")).to_have_text("6 cells")
    expect(bea.locator("#renders > .card")).to_have_count(1)
    for row in range(2):
        for column, artist in enumerate(ARTISTS):
            cell = card.locator(f'.sweep-cell[data-x="{column}"][data-y="{row}"]')
            expect(cell.locator(".shot img")).to_have_attribute("alt", f"{TEXT}, by {artist}")
    loaded(bea)
    bea.screenshot(path=screenshots / "sweep-room-1440.png", full_page=True)

    # The prompt tree: one group labelled as the card, closed; opened, its six cells, each with
    # its values, and a click on one refines it.
    tree = bea.locator("#prompt-tree")
    group = tree.locator("g.pt-sweep")
    cells = tree.locator("g.pt-node[data-prompt]").filter(visible=True)
    expect(group).to_have_count(1)
    expect(group.locator(".pt-sweep-label")).to_have_text("▸ Sweep · artist × seed")
    expect(group).to_contain_text(TEXT)
    expect(group.locator(".pt-meta")).to_have_text("Ann · 6 cells")
    expect(cells).to_have_count(0)
    tree.screenshot(path=screenshots / "sweep-tree-closed-1440.png")
    group.click()
    expect(group).to_have_attribute("aria-expanded", "true")
    expect(group.locator(".pt-sweep-label")).to_have_text("▾ Sweep · artist × seed")
    expect(cells.locator(".pt-meta")).to_have_text(
        [f"{artist} · seed {seed} · 1 image" for seed in (1, 2) for artist in ARTISTS]
    )
    tops = [cells.nth(i).bounding_box()["y"] for i in range(6)]
    assert tops == sorted(tops) and len(set(tops)) == 6  # one under the other, none overlaid
    loaded(bea)
    tree.screenshot(path=screenshots / "sweep-tree-open-1440.png")
    cells.filter(has_text="Frida Kahlo · seed 2").click()
    expect(bea.locator("#prompt-text")).to_have_value(f"{TEXT}, by Frida Kahlo")
    # Bea proposes a refinement of that cell, then a prompt of her own: the first hangs under
    # the cell, folded away with the group (which counts it); hers comes right under the group.
    bea.fill("#prompt-text", "a red star at dusk, by Frida Kahlo")  # the offline model's 22 tokens
    bea.click("#composer-submit")
    expect(bea.locator("#prompt-text")).to_have_value("")
    bea.fill("#prompt-text", "a blue moon")
    bea.click("#composer-submit")
    moon = tree.locator("g.pt-node", has_text="a blue moon")
    expect(moon).to_have_count(1)
    expect(cells).to_have_count(8)  # the group stays open across the tree's redraws
    group.click()
    expect(cells).to_have_text([re.compile("a blue moon")])
    expect(group.locator(".pt-meta")).to_have_text("Ann · 6 cells · 1 refinement")
    above, below = group.locator("rect.pt-box").bounding_box(), moon.locator("rect.pt-box")
    gap = below.bounding_box()["y"] - (above["y"] + above["height"])
    assert 5 < gap < 15, gap  # tree.py's ROW_GAP: the folded rows left no hole
    tree.screenshot(path=screenshots / "sweep-tree-folded-1440.png")

    # The phone: the same one card, its grid within the screen's width.
    phone_card = cy.locator("#renders .sweep-card")
    expect(phone_card.locator(".sweep-cell .shot img")).to_have_count(6)
    expect(phone_card.locator("thead th.sweep-col")).to_have_text(ARTISTS)
    assert cy.evaluate("document.documentElement.scrollWidth") <= 390
    phone_card.scroll_into_view_if_needed()
    loaded(cy)
    cy.screenshot(path=screenshots / "sweep-room-390.png")

    # Bea stars one cell and refines it: the composer takes that cell's own prompt.
    cell = card.locator('.sweep-cell[data-x="1"][data-y="0"]')
    cell.locator(".shot").hover()
    cell.get_by_role("button", name=re.compile(r"^Star")).click()
    expect(cell.locator("button.vote")).to_have_text("★ 1")
    star_for_ann = ann.locator('#renders .sweep-cell[data-x="1"][data-y="0"] button.vote')
    expect(star_for_ann).to_have_text("☆ 1")
    # A reload draws the same one card from the snapshot, keyed by its sweep.
    bea.reload()
    expect(bea.locator("#connection")).to_have_attribute("data-state", "live")
    expect(card).to_have_count(1)
    expect(card.locator(".sweep-cell .shot img")).to_have_count(6)
    expect(cell.locator("button.vote")).to_have_text("★ 1")
    cell.locator(".shot").hover()
    cell.get_by_role("button", name="Refine").click()
    expect(bea.locator("#prompt-text")).to_have_value(f"{TEXT}, by Hokusai")
    expect(bea.locator("#refining-text")).to_have_text(f"{TEXT}, by Hokusai")

    # The stage shows the whole grid, labelled, every cell's picture in.
    board = stage.locator("#stage-image .sweep-board")
    expect(board.locator(".sweep-board-head.col")).to_have_text(ARTISTS)
    expect(board.locator(".sweep-board-head.row")).to_have_text(["seed 1", "seed 2"])
    expect(board.locator("img.sweep-board-img:not(.preview)")).to_have_count(6)
    expect(stage.locator("#stage-label")).to_have_text("Sweep · artist × seed")
    expect(stage.locator("#stage-prompt")).to_have_text(TEXT)
    expect(stage.locator("#stage-author")).to_have_text("by Ann · ★ 1")
    loaded(stage)
    stage.screenshot(path=screenshots / "sweep-stage-1440.png")

    # 5 × 4 = 20 cells: refused in the composer before anything is sent.
    ann.fill("#prompt-text", "a green ring")
    ann.get_by_label("Sweep across (columns)").select_option("style")
    for style in STYLES:
        across.get_by_role("button", name=style).click()
    ann.get_by_label("Sweep down (rows)").select_option("technique")
    down = ann.locator('.sweep-axis[data-axis="y"]')
    for technique in TECHNIQUES:
        down.get_by_role("button", name=technique).click()
    expect(count).to_have_text(re.compile(r"^5 × 4 = 20 cells: a sweep has at most 16 cells"))
    expect(count).to_have_attribute("data-over", "true")
    expect(submit).to_be_disabled()
    ann.locator("#composer").screenshot(path=screenshots / "sweep-too-large-1440.png")
    ann.set_viewport_size(PHONE["viewport"])  # the composer's Sweep on a phone's width
    assert ann.evaluate("document.documentElement.scrollWidth") <= 390
    ann.locator("#composer").screenshot(path=screenshots / "sweep-composer-390.png")
    ann.set_viewport_size(LAPTOP["viewport"])
    # Sent anyway (another client), the server refuses it and the room says so.
    ann.evaluate(
        """([x, y]) => PartyHub.room.live.send({
            type: "sweep.submit", text: "a green ring",
            x: {axis: "style", values: x}, y: {axis: "technique", values: y},
        })""",
        [STYLES, TECHNIQUES],
    )
    expect(ann.locator("#toasts .toast", has_text="at most 16 cells, not 20")).to_have_count(1)
    expect(ann.locator("#renders .sweep-card")).to_have_count(1)
    # One value fewer down: 5 × 3 = 15 cells may go.
    down.get_by_role("button", name="linocut").click()
    expect(count).to_have_text("5 × 3 = 15 cells, one render each with the same seed")
    expect(submit).to_be_enabled()

    # Text to image only: another mode turns the sweep off, and says why.
    ann.get_by_text("Redraw an image").click()
    expect(ann.locator("#sweep-toggle")).to_be_disabled()
    expect(ann.locator("#sweep-body")).to_be_hidden()
    expect(ann.locator("#sweep-hint")).to_have_text(re.compile("choose Text to image to sweep"))
    expect(submit).to_have_text("Render")

    # The replay tells the sweep as one entry, not six prompts, and names each cell's render.
    bea.goto(room + "replay/")
    swept = bea.locator(".replay-entry.replay-sweep").filter(has_text="swept")
    expect(swept.locator(".replay-text")).to_have_text(
        [f"Ann swept “{TEXT}” across 3 artists × 2 seeds"]
    )
    expect(bea.locator('.replay-entry[data-type="prompt.added"]')).to_have_count(0)
    expect(bea.locator('.replay-entry[data-type="render.queued"]')).to_have_count(0)
    done = bea.locator('.replay-entry.replay-sweep[data-type="render.done"]')
    expect(done).to_have_count(6)
    expect(done.first).to_contain_text("1 image for the sweep’s ")
    loaded(bea)
    bea.screenshot(path=screenshots / "sweep-replay-1440.png", full_page=True)
    assert errors == []
