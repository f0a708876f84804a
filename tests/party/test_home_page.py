"""The home page's list of the parties this browser joined, and the pages for a code no party
has (the join form's dead ends)."""

import re
from datetime import timedelta

import pytest
from django.test import Client

from partyhub.models import Member, Party

pytestmark = pytest.mark.django_db


def listed(person):
    """The home page's list for `person`'s browser: (code, topic, title, name, role title)."""
    response = person.client.get("/")
    assert response.status_code == 200
    return [
        (m.party.code, m.party.topic, m.party.title, m.name, m.get_role_display())
        for m in response.context["joined"]
    ]


def test_it_lists_the_parties_this_browser_joined_newest_first(party, host, guest):
    later, _ = Party.start(
        topic="tides", title="Sunday", session_key=guest.session_key, host_name="Bob"
    )
    # Joined long after the first: newest first is by when this browser joined.
    Member.objects.filter(party=later).update(joined_at=party.created_at + timedelta(hours=1))

    assert listed(guest) == [
        (later.code, "tides", "Sunday", "Bob", "Prompt Master"),
        (party.code, "loneliness", "", "Bob", "Participant"),
    ]
    assert listed(host) == [(party.code, "loneliness", "", "Ann", "Prompt Master")]

    page = guest.client.get("/").content.decode()
    assert 'id="my-parties"' in page
    assert f'href="/p/{later.code}/"' in page and f'href="/p/{party.code}/"' in page
    assert page.index(later.code) < page.index(party.code)
    assert "Sunday" in page and "tides" in page and "loneliness" in page


def test_a_new_name_and_role_show_as_they_are_now(party, host, guest, member, pm):
    party.join(guest.session_key, "Bobby")
    pm.set_role(member, Member.Role.ART_EXPERT)
    assert listed(guest) == [(party.code, "loneliness", "", "Bobby", "Art Expert")]


def test_a_party_the_browser_was_removed_from_is_not_listed(party, guest, member, pm):
    pm.remove(member)
    assert listed(guest) == []
    assert 'id="my-parties"' not in guest.client.get("/").content.decode()


def test_a_browser_lists_only_its_own_parties(party, outsider):
    assert listed(outsider) == []
    # A browser with no session yet gets the page, and no session is made for it.
    browser = Client()
    response = browser.get("/")
    assert list(response.context["joined"]) == []
    assert "sessionid" not in browser.cookies


# --- A code no party has ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/p/{code}/", "/p/{code}/stage/", "/p/{code}/replay/"])
@pytest.mark.parametrize("code", ["NOPE99", "abcdef", "ABC", "AB%00CD", "O0I1L5"])
def test_a_page_for_a_code_no_party_has_is_a_friendly_404(settings, path, code):
    settings.DEBUG = True  # as `make run` runs: still not Django's debug page
    response = Client().get(path.format(code=code))
    assert response.status_code == 404
    page = response.content.decode()
    assert "No party has the code" in page
    assert 'id="join-form"' in page and "home.js" in page
    assert "Django" not in page and "URLconf" not in page


def test_the_404_page_shows_the_code_escaped_and_offers_it_to_correct():
    response = Client().get("/p/%3Cb%3Ex/")
    page = response.content.decode()
    assert response.status_code == 404
    assert "<b>x" not in page and "&lt;b&gt;x" in page
    assert re.search(r'<input name="code"[^>]*value="&lt;b&gt;x"', page)


def test_what_the_join_form_asks_before_going_to_a_room(party, outsider):
    """home.js checks a code with the events API (limit=1) before it navigates: 404 is no party
    (it stays on the page and says so), 403 a private party the browser is not in yet (the room
    asks for a name), 200 a party it may read."""
    check = "/api/parties/{}/events?limit=1"
    response = outsider.client.get(check.format("NOPE99"))
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert outsider.client.get(check.format(party.code)).status_code == 403
    party.public = True
    party.save()
    response = outsider.client.get(check.format(party.code.lower()))
    assert response.status_code == 200 and len(response.json()["events"]) == 1
