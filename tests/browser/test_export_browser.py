"""The export's index.html opened from disk (file://) in Debian's headless Chromium: every image
shows, the timeline's replay mounts from the embedded JSON, and nothing is fetched from anywhere
but the unpacked folder."""

import io
import os
import zipfile
from pathlib import Path

import pytest

# Its own Chromium, launched after the database fixture ran: with browsing.py's session-wide one,
# that fixture's writes were refused (SynchronousOnlyOperation: an event loop in this thread).
from browsing import CHROMIUM, CHROMIUM_ARGS

from partyhub.jobs.runner import run_render
from partyhub.models import Image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium package (CI does)",
        allow_module_level=True,
    )

from playwright.sync_api import expect, sync_playwright  # noqa: E402

SMALL = {"width": 64, "height": 64, "steps": 1}


@pytest.fixture
def unpacked(tmp_path, party, host, pm, member, expert):
    """A party with a pick, a shortlist, proposals and associations, exported and unzipped."""
    root, first = party.submit_prompt(pm, "loneliness", params={**SMALL, "count": 2})
    party.add_association(member, "winter light")
    child, second = party.submit_prompt(
        member, "two old people on a bench", root.pk, {**SMALL, "count": 3}
    )
    _, third = party.submit_prompt(pm, "an empty chair by the window", params=SMALL)
    for render in (first, second, third):
        run_render(render.pk)
    party.propose(member, "a crowd, and nobody talks", child.pk)
    best = Image.objects.get(render=second, index=2)
    best.vote(member, 1)
    best.pick(expert, note="Two backs say more than two faces")
    Image.objects.get(render=third).shortlist(expert)
    response = host.client.get(f"/p/{party.code}/export.zip")
    assert response.status_code == 200
    folder = tmp_path / "export"
    zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).extractall(folder)
    return folder


def test_index_html_from_disk_shows_every_image(unpacked, tmp_path):
    images = sorted(p.name for p in (unpacked / "images").glob("*.png"))
    assert len(images) == 6
    requested, errors = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            page.goto((unpacked / "index.html").as_uri(), wait_until="load")

            # Every <img> of the page has loaded, lazy ones too (scroll them into view).
            for image in page.locator("img").all():
                image.scroll_into_view_if_needed()
            page.wait_for_function(
                "() => [...document.images].every((img) => img.complete && img.naturalWidth > 0)",
                timeout=15_000,
            )
            shown = page.evaluate(
                "() => [...document.querySelectorAll('.pub img')]"
                ".map((img) => decodeURIComponent(img.src.split('/').pop()))"
            )
            assert set(shown) == set(images), "every image of the party is on the page"
            assert page.locator(".pub-picks figure").count() == 1
            expect(page.locator(".pub-picks")).to_contain_text("Two backs say more than two faces")
            # The tree's thumbnails are SVG <image>s: they load too.
            tree = page.locator(".pub-tree svg.prompt-tree-svg")
            expect(tree).to_be_visible()
            assert tree.locator("g.pt-proposed").count() == 1, "the proposal is in the tree"
            thumbnails = page.evaluate(
                """() => Promise.all([...document.querySelectorAll('.pub-tree svg image')]
                  .map((node) => new Promise((resolve) => {
                    const probe = new window.Image();
                    probe.onload = () => resolve(probe.naturalWidth);
                    probe.onerror = () => resolve(0);
                    probe.src = node.href.baseVal;
                  })))"""
            )
            assert len(thumbnails) == 3 and all(thumbnails), thumbnails

            # replay.js (beside index.html) mounted the timeline from the embedded JSON.
            timeline = page.locator(".pub-timeline")
            expect(timeline).to_have_attribute("data-mounted", "true")
            expect(timeline.locator(".replay-latest img")).to_be_visible()
            entries = timeline.locator(".replay-entry")
            assert entries.count() == party_events(unpacked)
            expect(timeline).to_contain_text("picked")

            screenshots = Path(os.environ.get("PARTYHUB_SCREENSHOTS", tmp_path))
            screenshots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=screenshots / "export-index.png", full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert requested and all(url.startswith("file://") for url in requested), requested
    assert all(url.startswith(unpacked.as_uri()) for url in requested), "only the export's files"


def party_events(folder):
    import json

    return len(json.loads((folder / "manifest.json").read_text())["events"])
