"""The composer in Chromium against `make run`: a double click on Render queues one render, and a
photo the model cannot take at its size is fitted to it on upload, the way chosen, with what was
done shown. Fixtures in browsing.py."""

import io

import numpy as np
import pytest
from browsing import RENDER_TIMEOUT_MS
from PIL import Image
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def start_party(browser, server, topic):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server + "/")
    page.fill("#start-form [name=topic]", topic)
    page.fill("#start-form [name=name]", "Ann")
    page.click("#start-form button[type=submit]")
    page.wait_for_url("**/p/*/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    # Few steps: these tests are about the composer, not the pictures.
    page.click("#params summary")
    page.fill("#composer [name=steps]", "4")
    return context, page, errors


def snapshot(page):
    code = page.url.rstrip("/").rsplit("/", 1)[-1]
    return page.evaluate(f"() => fetch('/api/parties/{code}').then((r) => r.json())")


def test_a_double_click_on_render_queues_one_render(server, browser, screenshots):
    context, page, errors = start_party(browser, server, "double clicks")
    done = page.locator('#renders .card[data-status="done"]')
    page.fill("#prompt-text", "a red circle on a white background")
    page.dblclick("#composer button[type=submit]")
    expect(done).to_have_count(1, timeout=RENDER_TIMEOUT_MS)
    page.wait_for_timeout(1500)  # a second render, had one been queued, would show by now
    expect(page.locator("#renders .card")).to_have_count(1)
    state = snapshot(page)
    assert len(state["renders"]) == 1
    (prompt,) = state["prompts"]
    assert prompt["client_id"]  # the composer sent one

    # A repaint uploads its mask before it sends: three quick clicks still make one render.
    page.locator(".shot").first.get_by_role("button", name="Use").click()
    page.check("input[name=mode][value=inpaint]")
    page.fill("#prompt-text", "a blue star on a white background")
    box = page.locator("#mask-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5, steps=5)
    page.mouse.up()
    page.click("#composer button[type=submit]", click_count=3)
    expect(done).to_have_count(2, timeout=RENDER_TIMEOUT_MS)
    page.wait_for_timeout(1500)
    expect(page.locator("#renders .card")).to_have_count(2)

    # Rendering the same prompt again on purpose is a new prompt with a new id.
    page.check("input[name=mode][value=txt2img]")
    page.fill("#prompt-text", "a red circle on a white background")
    page.click("#composer button[type=submit]")
    expect(done).to_have_count(3, timeout=RENDER_TIMEOUT_MS)
    state = snapshot(page)
    ids = [p["client_id"] for p in state["prompts"]] + [
        c["client_id"] for p in state["prompts"] for c in p["children"]
    ]
    assert len(state["renders"]) == 3 and len(set(ids)) == 3
    page.screenshot(path=screenshots / "double-click.png", full_page=True)
    assert errors == []
    context.close()


def test_a_photo_of_the_wrong_size_is_fitted_on_upload_and_redrawn(
    server, browser, screenshots, tmp_path
):
    photo = tmp_path / "photo.jpg"
    pixels = np.zeros((200, 300, 3), np.uint8)
    pixels[:, :150] = (220, 30, 30)
    pixels[:, 150:] = (30, 30, 220)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    photo.write_bytes(buffer.getvalue())

    context, page, errors = start_party(browser, server, "holiday photos")
    page.check("input[name=mode][value=img2img]")
    fitted = page.locator("#source-fitted")
    expect(fitted).to_be_hidden()
    # Padding is the default choice; the offline model takes at most 256 a side.
    page.set_input_files("#source-file", str(photo))
    expect(fitted).to_have_text(
        "Fitted 300×200 → 256×176 by scaling down to 256×171, then padding."
    )
    expect(page.locator("#source-img")).to_be_visible()
    page.select_option("#source-fit", "crop")
    page.set_input_files("#source-file", str(photo))
    expect(fitted).to_have_text(
        "Fitted 300×200 → 256×168 by scaling down to 256×171, then cropping."
    )
    page.screenshot(path=screenshots / "upload-fitted.png", full_page=True)

    page.fill("#prompt-text", "a red square on a blue background")
    page.click("#composer button[type=submit]")
    done = page.locator('#renders .card[data-status="done"]')
    expect(done).to_have_count(1, timeout=RENDER_TIMEOUT_MS)
    expect(done.first.locator(".card-meta")).to_contain_text("redrawn")
    (image,) = snapshot(page)["images"]
    assert (image["width"], image["height"]) == (256, 168)
    # "Use" on a party image puts the note about the upload away.
    page.locator(".shot").first.get_by_role("button", name="Use").click()
    expect(fitted).to_be_hidden()
    assert errors == []
    context.close()
