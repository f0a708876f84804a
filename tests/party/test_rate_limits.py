"""Rate limits for parties (issue 7, item 14): a flood from one browser session or one address
gets `rate_limited` with `retry_after` (429 over HTTP, with a Retry-After header), nothing of the
refused requests is applied, and other people's requests and renders go on."""

import json

import pytest
from django.test import Client

from core.errors import ApiError
from partyhub import actions
from partyhub.jobs.runner import run_render
from partyhub.models import Party, Prompt, Render, Upload
from tests.conftest import Person

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"width": 64, "height": 64, "steps": 1}


def submit(member, text):
    actions.handle(member.pk, {"type": "prompt.submit", "text": text, "params": SMALL})


def test_a_flood_of_renders_from_one_session_is_refused_and_others_still_render(
    party, pm, member, settings
):
    settings.PARTYHUB_PARTY_RENDERS_PER_MINUTE = 5
    for i in range(5):
        submit(pm, f"chair {i}")
    with pytest.raises(ApiError) as refused:
        submit(pm, "chair 5")
    error = refused.value.as_dict()
    assert (error["code"], refused.value.status) == ("rate_limited", 429)
    assert 1 <= error["retry_after"] <= 60
    assert Prompt.objects.filter(author=pm).count() == 5  # nothing of the refused one

    # Someone else's prompt is taken, and renders once the flood's are done.
    submit(member, "a table")
    theirs = Render.objects.get(prompt__author=member)
    while (next_id := Render.objects.next_queued_id()) is not None:
        run_render(next_id)
    theirs.refresh_from_db()
    assert theirs.status == Render.Status.DONE


def test_refused_prompts_cost_no_quota(party, pm, refused, settings):
    """Issue 16, item 4: validation runs before the render quota is charged."""
    settings.PARTYHUB_PARTY_RENDERS_PER_MINUTE = 12
    invalid = [
        {"type": "prompt.submit", "text": "chair", "params": {**SMALL, "steps": 999}},
        {"type": "prompt.submit", "text": "", "params": SMALL},
        {"type": "prompt.submit", "text": "chair", "params": {"model": "no-such-model"}},
        {"type": "prompt.submit", "text": "chair", "parent": 10**6},
    ]
    codes = {refused(pm, invalid[i % len(invalid)]) for i in range(12)}
    assert codes == {"invalid_param", "invalid_prompt", "unknown_model", "unknown_prompt"}
    for i in range(12):  # the whole quota is still there
        submit(pm, f"chair {i}")
    assert Prompt.objects.filter(author=pm).count() == 12
    with pytest.raises(ApiError) as over:
        submit(pm, "one too many")
    assert over.value.code == "rate_limited"


def test_a_refused_party_costs_the_address_no_quota(settings):
    settings.PARTYHUB_NEW_PARTIES_PER_HOUR = 2
    client = Client()
    for _ in range(5):
        response = client.post("/api/parties", {"topic": ""}, content_type="application/json")
        assert response.json()["error"]["code"] == "invalid_topic"
    for _ in range(2):
        response = client.post("/api/parties", {"topic": "t"}, content_type="application/json")
        assert response.status_code == 201
    response = client.post("/api/parties", {"topic": "t"}, content_type="application/json")
    assert response.status_code == 429


async def test_the_refusal_reaches_the_socket_as_an_error_frame(party, host, settings):
    settings.PARTYHUB_PARTY_RENDERS_PER_MINUTE = 1
    ws = host.websocket(party.code, since=party.last_seq)
    assert (await ws.connect())[0]
    for _ in range(2):
        await ws.send_json_to({"type": "prompt.submit", "text": "chair", "params": SMALL})
    frames = []
    while not frames or frames[-1]["type"] != "error":
        frames.append(await ws.receive_json_from(timeout=30))
    assert frames[-1]["code"] == "rate_limited" and frames[-1]["retry_after"] >= 1
    await ws.disconnect()


def create_party(client):
    body = json.dumps({"topic": "tides", "name": "Ann"})
    return client.post("/api/parties", body, content_type="application/json")


def test_one_address_starting_too_many_parties_gets_429_and_another_does_not(settings):
    settings.PARTYHUB_NEW_PARTIES_PER_HOUR = 3
    flooder = Client(REMOTE_ADDR="203.0.113.7")
    assert [create_party(flooder).status_code for _ in range(3)] == [201] * 3
    response = create_party(flooder)
    assert response.status_code == 429
    retry_after = response.json()["error"]["retry_after"]
    assert response["Retry-After"] == str(retry_after) and 1 <= retry_after <= 3600
    assert create_party(Client(REMOTE_ADDR="198.51.100.2")).status_code == 201
    assert Party.objects.count() == 4


def test_one_address_uploading_too_much_gets_429(party, settings):
    from PIL import Image

    from tests.party.test_uploads import encoded

    settings.PARTYHUB_UPLOADS_PER_MINUTE = 2
    guest = Person("Bo")
    party.join(guest.session_key, "Bo")
    data = encoded(Image.new("RGB", (8, 8)), "PNG")

    def upload():
        from django.core.files.uploadedfile import SimpleUploadedFile

        image = SimpleUploadedFile("x.png", data, content_type="image/png")
        return guest.client.post(f"/api/parties/{party.code}/uploads", {"image": image})

    assert [upload().status_code for _ in range(2)] == [201, 201]
    response = upload()
    assert (response.status_code, response.json()["error"]["code"]) == (429, "rate_limited")
    assert Upload.objects.count() == 2
