"""The stage's join QR code and public address, and the replay page, over HTTP."""

import json
import re

import pytest
import segno
from django.core.exceptions import ImproperlyConfigured

from config.env import env_origin
from partyhub.qr import is_loopback, join_qr_svg
from partyhub.timeline import timeline

pytestmark = pytest.mark.django_db


def inline_svg(html):
    match = re.search(
        r'<div id="stage-qr" class="stage-qr" data-url="([^"]*)">(<svg.*?</svg>)', html
    )
    assert match, "the stage has no inline QR code"
    return match.group(1), match.group(2)


def replay_data(html):
    match = re.search(
        r'<script id="replay-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, "the replay page embeds no data"
    return json.loads(match.group(1))


def test_it_encodes_the_room_url_in_a_qr_code_phones_can_read():
    svg = join_qr_svg("http://192.168.1.20:8000/p/VQME6G/")
    expected = segno.make_qr("http://192.168.1.20:8000/p/VQME6G/")
    assert not expected.is_micro  # phone cameras read only full QR codes
    assert svg == expected.svg_inline(
        dark="#000",
        light="#fff",
        border=4,
        omitsize=True,
        svgclass="join-qr",
        title="QR code: http://192.168.1.20:8000/p/VQME6G/",
    )
    assert svg.startswith('<svg viewBox="0 0 ') and "width=" not in svg  # CSS sizes it
    assert svg != join_qr_svg("http://192.168.1.20:8000/p/VQME6H/")
    assert is_loopback("http://127.0.0.1:8000/p/X/") and is_loopback("http://localhost/p/X/")
    assert is_loopback("http://[::1]:8000/p/X/")
    assert not is_loopback("http://192.168.1.20:8000/p/X/")
    assert not is_loopback("https://party.example.org/p/X/")


def test_the_stage_shows_the_qr_code_of_the_room_url_it_is_served_from(party, host, settings):
    settings.ALLOWED_HOSTS = ["192.168.1.20"]
    response = host.client.get(f"/p/{party.code}/stage/", HTTP_HOST="192.168.1.20:8000")

    assert response.status_code == 200
    url, svg = inline_svg(response.content.decode())
    assert url == f"http://192.168.1.20:8000/p/{party.code}/"
    assert svg == join_qr_svg(url)
    assert f"192.168.1.20:8000/p/{party.code}/</p>" in response.content.decode()
    assert "works on this computer only" not in response.content.decode()


def test_the_stage_warns_when_its_address_is_this_computers_only(party, host):
    response = host.client.get(f"/p/{party.code}/stage/", HTTP_HOST="127.0.0.1:8000")
    url, svg = inline_svg(response.content.decode())
    assert url == f"http://127.0.0.1:8000/p/{party.code}/"
    assert "works on this computer only" in response.content.decode()


def test_the_public_url_setting_decides_the_address_in_the_qr_code(party, host, settings):
    settings.PARTYHUB_PUBLIC_URL = "https://party.example.org"
    response = host.client.get(f"/p/{party.code}/stage/")

    url, svg = inline_svg(response.content.decode())
    assert url == f"https://party.example.org/p/{party.code}/"
    assert svg == join_qr_svg(url)
    # A new party's `url` is the same public address.
    created = host.post_json("/api/parties", {"topic": "cats"}).json()
    assert created["url"] == f"https://party.example.org/p/{created['code']}/"


@pytest.mark.parametrize(
    "raw, value",
    [
        ("https://party.example.org", "https://party.example.org"),
        ("https://party.example.org/", "https://party.example.org"),
        ("http://192.168.1.20:8000", "http://192.168.1.20:8000"),
        ("", ""),
    ],
)
def test_the_public_url_is_an_origin(monkeypatch, raw, value):
    monkeypatch.setenv("PARTYHUB_PUBLIC_URL", raw)
    assert env_origin("PARTYHUB_PUBLIC_URL") == value


@pytest.mark.parametrize(
    "raw", ["party.example.org", "ftp://party.example.org", "https://example.org/party", "https://"]
)
def test_a_public_url_that_is_not_an_origin_stops_start_up(monkeypatch, raw):
    monkeypatch.setenv("PARTYHUB_PUBLIC_URL", raw)
    with pytest.raises(ImproperlyConfigured, match="PARTYHUB_PUBLIC_URL"):
        env_origin("PARTYHUB_PUBLIC_URL")


@pytest.mark.parametrize("page", ["stage", "replay"])
def test_stage_and_replay_are_for_members_or_a_public_party(party, host, guest, outsider, page):
    path = f"/p/{party.code}/{page}/"
    assert host.client.get(path).status_code == 200
    assert guest.client.get(path).status_code == 200
    response = outsider.client.get(path)
    assert response.status_code == 302 and response["Location"] == f"/p/{party.code}/"

    party.public = True
    party.save()
    assert outsider.client.get(path).status_code == 200
    assert outsider.client.get(f"/p/{party.code.lower()}/{page}/").status_code == 200
    assert outsider.client.get(f"/p/ZZZZZZ/{page}/").status_code == 404


def test_the_replay_page_embeds_the_timeline_of_the_archive_and_the_image_urls(
    party, host, pm, member, image
):
    image.vote(pm, 1)
    response = host.client.get(f"/p/{party.code}/replay/")

    assert response.status_code == 200
    data = replay_data(response.content.decode())
    archive = host.client.get(f"/api/parties/{party.code}/events").json()["events"]
    assert data["entries"] == timeline(archive, {pm.pk: "Ann", member.pk: "Bob"})
    assert data["images"] == {str(image.pk): image.file.url}
    party.refresh_from_db()
    assert [e["seq"] for e in data["entries"]] == list(range(1, party.last_seq + 1))
    done = next(e for e in data["entries"] if e["type"] == "render.done")
    assert done["images"] == [image.pk]
    assert "partyhub/replay.js" in response.content.decode()


def test_the_replay_page_escapes_what_people_wrote(party, host, member):
    party.add_association(member, "</script><script>alert(1)</script>")
    html = host.client.get(f"/p/{party.code}/replay/").content.decode()
    assert "<script>alert(1)" not in html
    texts = [e["text"] for e in replay_data(html)["entries"]]
    assert "Bob associated “</script><script>alert(1)</script>”" in texts


def test_the_room_links_to_the_replay(party, host):
    html = host.client.get(f"/p/{party.code}/").content.decode()
    assert f'href="/p/{party.code}/replay/"' in html
