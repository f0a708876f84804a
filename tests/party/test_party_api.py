import json

import pytest
from django.test import Client

from partyhub.models import JOIN_CODE_ALPHABET, Event, Member, Party

pytestmark = pytest.mark.django_db


def error_code(response):
    return response.json()["error"]["code"]


def test_it_starts_a_party_with_the_creator_as_prompt_master(host):
    response = host.post_json(
        "/api/parties", {"topic": " the meaning of life ", "title": "Friday", "name": "Ann"}
    )
    assert response.status_code == 201
    body = response.json()
    assert len(body["code"]) == 6 and set(body["code"]) <= set(JOIN_CODE_ALPHABET)
    assert body["url"].endswith(f"/p/{body['code']}/")
    assert body["ws"] == f"/ws/parties/{body['code']}/"
    party = Party.objects.get(code=body["code"])
    assert (party.topic, party.title, party.public) == ("the meaning of life", "Friday", False)
    member = party.members.get()
    assert (member.name, member.role) == ("Ann", Member.Role.PROMPT_MASTER)
    assert body["member"] == member.as_dict()
    assert list(party.events.values_list("seq", "type")) == [(1, "member.joined")]


@pytest.mark.parametrize(
    "body, code",
    [
        ({}, "invalid_topic"),
        ({"topic": "   "}, "invalid_topic"),
        ({"topic": "x" * 201}, "invalid_topic"),
        ({"topic": 5}, "invalid_topic"),
        ({"topic": "cats", "public": "yes"}, "invalid_public"),
        ({"topic": "cats", "name": ""}, "invalid_name"),
    ],
)
def test_it_refuses_a_bad_party(host, body, code):
    response = host.post_json("/api/parties", body)
    assert response.status_code == 400
    assert error_code(response) == code
    assert not Party.objects.filter(stream__isnull=True).exists()  # streams have their own


def test_it_refuses_a_body_that_is_not_json(host):
    response = host.client.post("/api/parties", "{", content_type="application/json")
    assert (response.status_code, error_code(response)) == (400, "invalid_json")


def test_a_post_without_csrf_token_is_refused():
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(
        "/api/parties", json.dumps({"topic": "cats"}), content_type="application/json"
    )
    assert (response.status_code, error_code(response)) == (403, "csrf_failed")
    assert not Party.objects.filter(stream__isnull=True).exists()  # streams have their own


def test_a_post_with_the_csrf_cookie_value_is_accepted():
    browser = Client(enforce_csrf_checks=True)
    browser.get("/")
    token = browser.cookies["csrftoken"].value
    response = browser.post(
        "/api/parties",
        json.dumps({"topic": "cats"}),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 201


def test_joining_again_from_the_same_session_keeps_the_member(party, guest):
    first = guest.post_json(f"/api/parties/{party.code}/join", {"name": "Bobby"})
    assert first.status_code == 200
    member = Member.objects.get(session_key=guest.session_key)
    assert first.json() == {
        "member": {
            "id": member.pk,
            "name": "Bobby",
            "role": "participant",
            "muted": False,
            "removed": False,
        }
    }
    assert party.members.count() == 2
    last = Event.objects.filter(party=party).last()
    assert (last.type, last.payload["member"]["name"]) == ("member.joined", "Bobby")

    again = guest.post_json(f"/api/parties/{party.code}/join", {"name": "Bobby"})
    assert again.json()["member"]["id"] == member.pk
    assert Event.objects.filter(party=party).count() == last.seq  # same name: nothing new


def test_an_outsider_joins_as_participant(party, outsider):
    response = outsider.post_json(f"/api/parties/{party.code}/join", {"name": "Eve"})
    assert response.status_code == 200
    assert response.json()["member"]["role"] == "participant"
    assert party.members.count() == 3


@pytest.mark.parametrize("name", ["", "   ", "x" * 100, None, 7])
def test_it_refuses_a_bad_name(party, outsider, name):
    response = outsider.post_json(f"/api/parties/{party.code}/join", {"name": name})
    assert (response.status_code, error_code(response)) == (400, "invalid_name")
    assert party.members.count() == 2


@pytest.mark.parametrize(
    "method, path",
    [
        ("post", "/api/parties/NOPE99/join"),
        ("get", "/api/parties/NOPE99"),
        ("get", "/api/parties/NOPE99/events"),
        ("get", "/p/NOPE99/export.zip"),
    ],
)
def test_an_unknown_party_is_a_json_404(host, method, path):
    if method == "post":
        response = host.post_json(path, {"name": "Ann"})
    else:
        response = host.client.get(path)
    assert (response.status_code, error_code(response)) == (404, "not_found")


@pytest.mark.parametrize(
    "path", ["/api/parties/{code}", "/api/parties/{code}/events", "/p/{code}/export.zip"]
)
def test_reading_a_party_needs_membership(party, host, guest, outsider, path):
    path = path.format(code=party.code)
    assert host.client.get(path).status_code == 200
    assert guest.client.get(path).status_code == 200
    response = outsider.client.get(path)
    assert (response.status_code, error_code(response)) == (403, "not_a_member")
    party.public = True
    party.save()
    assert outsider.client.get(path).status_code == 200


def test_the_snapshot_shows_the_party_and_who_is_asking(party, guest):
    body = guest.client.get(f"/api/parties/{party.code}").json()
    assert body["topic"] == "loneliness"
    assert body["me"]["name"] == "Bob"
    assert [m["role"] for m in body["members"]] == ["prompt_master", "participant"]
    assert body["last_seq"] == 2
    assert body["prompts"] == body["renders"] == body["images"] == []


def test_the_snapshot_nests_prompts_as_a_tree(party, host):
    pm = Member.objects.get(session_key=host.session_key)
    root, _ = party.submit_prompt(pm, "loneliness")
    child, _ = party.submit_prompt(pm, "two old people", root.pk)
    party.submit_prompt(pm, "two old people, rain", child.pk)
    tree = host.client.get(f"/api/parties/{party.code}").json()["prompts"]
    assert [n["text"] for n in tree] == ["loneliness"]
    assert tree[0]["children"][0]["text"] == "two old people"
    assert tree[0]["children"][0]["children"][0]["parent"] == child.pk


def test_events_page_after_since_in_order(party, host):
    pm = Member.objects.get(session_key=host.session_key)
    for word in ["rain", "chair", "window"]:
        party.add_association(pm, word)
    body = host.client.get(f"/api/parties/{party.code}/events?since=2&limit=2").json()
    assert [e["seq"] for e in body["events"]] == [3, 4]
    assert body["more"] is True and body["last_seq"] == 5
    body = host.client.get(f"/api/parties/{party.code}/events?since=4").json()
    assert [(e["seq"], e["association"]["text"]) for e in body["events"]] == [(5, "window")]
    assert body["more"] is False
    for bad in ["since=-1", "since=x", "limit=0", "limit=1001"]:
        response = host.client.get(f"/api/parties/{party.code}/events?{bad}")
        assert (response.status_code, error_code(response)) == (400, "invalid_since")


def test_models_lists_the_presets_and_what_is_on_disk(client):
    presets = {p["name"]: p for p in client.get("/api/models").json()}
    assert {"offline", "sd-turbo", "sdxl-turbo", "sd15"} <= set(presets)
    offline = presets["offline"]
    assert (offline["family"], offline["available"], offline["offline"]) == (
        "diffusion",
        True,
        True,
    )
    assert offline["modes"] == ["txt2img", "img2img", "inpaint", "variation", "walk"]
    assert offline["limits"]["count"] == [1, 8]
    assert presets["sd-turbo"]["available"] is False  # no weights on this machine
    assert presets["sd-turbo"]["limits"]["steps"] == [1, 4]
    assert "overhead-probe" not in presets


def test_api_endpoints_refuse_other_methods(party, host):
    response = host.client.delete(f"/api/parties/{party.code}")
    assert (response.status_code, error_code(response)) == (405, "method_not_allowed")


def test_a_prompt_for_a_model_without_weights_is_refused(party, host):
    pm = Member.objects.get(session_key=host.session_key)
    from core.errors import ApiError

    with pytest.raises(ApiError) as refused:
        party.submit_prompt(pm, "cats", params={"model": "sd-turbo"})
    assert refused.value.code == "model_unavailable"
    assert not party.prompts.exists()


def test_pages_render(party, host, outsider):
    assert Client().get("/").status_code == 200
    assert host.client.get(f"/p/{party.code}/").status_code == 200
    assert outsider.client.get(f"/p/{party.code.lower()}/").status_code == 200
    assert outsider.client.get(f"/p/{party.code}/stage/").status_code == 302
    assert host.client.get(f"/p/{party.code}/stage/").status_code == 200
    assert Client().get("/p/NOPE99/").status_code == 404


def test_signing_up_or_in_keeps_the_browser_s_parties():
    # Django gives the session a new key at sign-in; the memberships move with it.
    browser = Client()
    body = json.dumps({"topic": "tides", "name": "Ann"})
    code = browser.post("/api/parties", body, content_type="application/json").json()["code"]
    me = browser.get(f"/api/parties/{code}").json()["me"]
    old_key = browser.cookies["sessionid"].value

    response = browser.post(
        "/accounts/signup/",
        {"username": "ann", "password1": "a long pass phrase", "password2": "a long pass phrase"},
    )
    assert response.status_code == 302
    assert browser.cookies["sessionid"].value != old_key
    assert browser.get(f"/api/parties/{code}").json()["me"] == me

    browser.post("/accounts/logout/")
    browser.post("/accounts/login/", {"username": "ann", "password": "a long pass phrase"})
    # Signing out ended the session, and with it the membership (a private party: 403).
    assert browser.get(f"/api/parties/{code}").status_code == 403
