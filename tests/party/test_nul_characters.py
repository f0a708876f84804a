"""Text with a NUL character is refused at the door: PostgreSQL cannot store one, and a request
must never fail half way through its writes."""

import pytest

from partyhub.models import Party, Prompt

pytestmark = pytest.mark.django_db(transaction=True)

NUL = "lonely\x00ness"


def test_http_bodies_with_nul_are_refused(host, party):
    parties = Party.objects.count()
    response = host.post_json("/api/parties", {"topic": NUL, "name": "Ann"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_character")
    response = host.post_json("/api/parties", {"topic": "tides", "name": "Ann", NUL: 1})
    assert response.json()["error"]["code"] == "invalid_character"
    response = host.post_json(f"/api/parties/{party.code}/join", {"name": NUL})
    assert response.json()["error"]["code"] == "invalid_character"
    assert Party.objects.count() == parties


@pytest.mark.parametrize(
    "path", ["/api/parties/{}", "/api/parties/{}/events", "/p/{}/", "/g/{}/", "/p/{}/export.zip"]
)
def test_a_party_code_with_nul_in_the_address_is_not_found(host, party, path):
    # Before: PostgreSQL raised on the NUL, and the request failed with a 500.
    response = host.client.get(path.format(party.code[:3] + "%00" + party.code[4:]))
    assert response.status_code == 404


def test_client_messages_with_nul_are_refused(party, member, pm, refused):
    seq = party.last_seq
    assert refused(member, {"type": "prompt.submit", "text": NUL}) == "invalid_character"
    assert refused(member, {"type": "association.add", "text": NUL}) == "invalid_character"
    message = {"type": "prompt.submit", "text": "a", "params": {"negative": [NUL]}}
    assert refused(pm, message) == "invalid_character"
    party.refresh_from_db()
    assert party.last_seq == seq and not Prompt.objects.exists()


def test_search_terms_with_nul_are_refused(host, party):
    response = host.client.get(f"/api/parties/{party.code}/search", {"q": NUL})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_character")
