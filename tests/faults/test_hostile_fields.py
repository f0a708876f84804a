"""Hostile input, generated, for the fields added since test_hostile_messages.py was written,
sent through their real entry points: `client_id` of prompt.submit and prompt.propose (the
party socket), `fit` and `model` of an upload (multipart over HTTP), the party socket's
`presence` query parameter, and search by meaning (`like` and the other search parameters).

Each value is any text (lone surrogates, NUL, RTL marks, long runs) or a value of the wrong
JSON type. The answer is a documented error code or a valid success, never a 500; a refusal
changes nothing (no prompt, render, quota, upload or file); and the socket, the party and the
endpoint still work afterwards."""

import json
import re
import uuid
from urllib.parse import quote_from_bytes

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from generation import fitting, scoring
from generation.presets import all_presets, default_preset
from partyhub import search as search_module
from partyhub.consumers import CLOSE_BAD_REQUEST
from partyhub.models import Prompt, Render, Upload
from tests.conftest import receive_until
from tests.faults.test_hostile_input import png
from tests.faults.test_hostile_messages import (
    DOCUMENTED,
    answer,
    as_frame,
    refusals,
    stored,
    strange_text,
    unstorable_text,
    wrong_type,
)

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SMALL = {"width": 64, "height": 64, "steps": 1}
ID_CHARACTERS = "ABCXYZabcxyz0189_-"

# Text a client may put in any field: strange, unstorable, very long, or JSON of the wrong type
# written out as text (what a form field or query parameter carries instead of a JSON value).
any_text = st.one_of(
    strange_text,
    unstorable_text,
    st.sampled_from(["\u202e", "\u200f", "\ufeff", " ", "\n", "\t"]).map(lambda c: c * 3000),
    wrong_type.map(json.dumps),
)


def as_bytes(text):
    # A lone surrogate as the bytes a hostile client would send for it (not valid UTF-8).
    return text.encode("utf-8", "surrogatepass")


# --- client_id: prompt.submit and prompt.propose -----------------------------------------------


def valid_client_id(value):
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 64
        and all(c.isascii() and (c.isalnum() or c in "_-") for c in value)
    )


client_ids = st.one_of(
    st.none(),
    st.text(ID_CHARACTERS, min_size=1, max_size=64),  # valid: taken, and once only
    st.text(ID_CHARACTERS, min_size=65, max_size=300),
    st.text(ID_CHARACTERS, min_size=1, max_size=20).map(lambda v: v + "\n"),  # `$` would pass it
    st.text(ID_CHARACTERS, min_size=1, max_size=20).map(lambda v: "\u0661" + v),  # Arabic 1
    any_text,
    wrong_type,
)


@FUZZ
@given(client_id=client_ids, kind=st.sampled_from(["prompt.submit", "prompt.propose"]))
@example(client_id="abc\n", kind="prompt.submit")
@example(client_id="\udfff", kind="prompt.submit")
@example(client_id=2**70, kind="prompt.submit")
def test_a_hostile_client_id_is_refused_costs_nothing_and_a_valid_one_counts_once(
    pm, party, settings, client_id, kind
):
    settings.PARTYHUB_PARTY_RENDERS_PER_MINUTE = 1
    cache.clear()  # each example starts with its one render of quota
    message = {"type": kind, "text": "a red circle", "params": SMALL, "client_id": client_id}
    used_before = (
        valid_client_id(client_id)
        and Prompt.objects.filter(author=pm, client_id=client_id).exists()
    )
    before = (stored(party), Render.objects.count())
    code = answer(pm, as_frame(message))
    if client_id is not None and not valid_client_id(client_id):
        assert code in {"invalid_client_id"} | refusals(message), code
        assert (stored(party), Render.objects.count()) == before
    else:
        assert code is None, code
        new = 0 if used_before else 1
        assert party.prompts.count() == before[0][1] + new
        if client_id is not None:
            # Sent again (a double click): the same prompt, no render, no quota, no error.
            assert answer(pm, as_frame(message)) is None
            assert party.prompts.count() == before[0][1] + new
        if new and kind == "prompt.submit":
            return  # the one render of quota is spent: nothing more to learn
    # Whatever came before cost no quota: a new prompt still renders.
    fresh = {"type": "prompt.submit", "text": "a blue star", "params": SMALL}
    assert answer(pm, as_frame({**fresh, "client_id": uuid.uuid4().hex})) is None


# One of each kind the fuzz above draws: a socket per Hypothesis example would cost a render each.
HOSTILE_IDS = ["", "a" * 65, "abc\n", "\u0661abc", "a b", "\udfff", "x\x00", "\u202eabc", 2**70]
HOSTILE_IDS += [1.5, True, [], {"id": "x"}, [[[[["deep"]]]]]]


def test_hostile_client_ids_on_the_socket_leave_it_and_the_room_working(
    host, guest, party, settings
):
    settings.PARTYHUB_WS_MESSAGE_BURST = 1000
    ids = HOSTILE_IDS

    async def talk():
        ws_host = host.websocket(party.code, since=party.last_seq)
        ws_guest = guest.websocket(party.code, since=party.last_seq)
        for ws in (ws_host, ws_guest):
            assert (await ws.connect())[0]
        for client_id in ids:
            message = {"type": "prompt.submit", "text": "a red circle", "client_id": client_id}
            await ws_host.send_to(text_data=as_frame(message))
        codes = [(await ws_host.receive_json_from(timeout=30)) for _ in ids]
        # Another member's valid prompt renders, and the host's socket sees it done.
        mine = uuid.uuid4().hex
        await ws_guest.send_json_to(
            {"type": "prompt.submit", "text": "a blue star", "params": SMALL, "client_id": mine}
        )
        frames = await receive_until(ws_host, "render.done", timeout=60)
        added = [f for f in frames if f["type"] == "prompt.added"]
        assert [f["prompt"]["client_id"] for f in added] == [mine]
        word = f"still here {mine[:8]}"
        await ws_host.send_json_to({"type": "association.add", "text": word})
        frames = await receive_until(ws_host, "association.added")
        assert frames[-1]["association"]["text"] == word
        for ws in (ws_host, ws_guest):
            await ws.disconnect()
        return codes

    codes = async_to_sync(talk)()
    assert {frame["type"] for frame in codes} == {"error"}
    assert {frame["code"] for frame in codes} <= {"invalid_client_id", "invalid_character"}
    assert Render.objects.count() == 1  # the guest's


# --- fit and model: uploads --------------------------------------------------------------------


def multipart(fields, image):
    """A multipart body of the text `fields` ([(name, bytes)], in order, repeats allowed) and
    the file `image` (bytes), as a hostile client may write it."""
    boundary = b"hostile-fields"
    parts = [
        b'Content-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value
        for name, value in fields
    ]
    parts.append(
        b'Content-Disposition: form-data; name="image"; filename="x.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + image
    )
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + b"--" + boundary + b"--\r\n", "multipart/form-data; boundary=hostile-fields"


field_values = st.one_of(
    st.sampled_from(["crop", "pad", "offline", "sd15", "offline-ar", "janus-pro-1b"]),
    st.sampled_from(["crop", "pad"]).map(lambda v: v.upper()),
    st.sampled_from(["crop", "pad", "offline"]).map(lambda v: f" {v}\n"),
    any_text,
).map(as_bytes) | st.binary(max_size=50)

sizes = st.tuples(
    st.integers(1, 300) | st.sampled_from([1, 7, 8, 9, 2000]),
    st.integers(1, 300) | st.sampled_from([1, 7, 8, 9, 2000]),
)


def stored_files(settings):
    return sorted(p.name for p in (settings.MEDIA_ROOT).rglob("*") if p.is_file())


def upload(person, party, fields, size=(8, 8)):
    body, content_type = multipart(fields, png(size))
    return person.client.post(f"/api/parties/{party.code}/uploads", body, content_type=content_type)


@FUZZ
@given(
    fields=st.lists(st.tuples(st.sampled_from([b"fit", b"model"]), field_values), max_size=3),
    size=sizes,
)
@example(fields=[(b"fit", b"crop"), (b"fit", b"bogus")], size=(8, 8))
@example(fields=[(b"fit", b"bogus"), (b"fit", b"pad")], size=(8, 8))
@example(fields=[(b"fit", b"crop"), (b"model", b"offline-ar")], size=(1, 2000))
@example(fields=[(b"fit", b"pad"), (b"model", b"\xed\xa0\x80")], size=(8, 8))
def test_hostile_fit_and_model_fit_exactly_or_store_nothing(host, party, settings, fields, size):
    settings.PARTYHUB_UPLOADS_PER_MINUTE = 10**6
    before = (Upload.objects.count(), stored_files(settings))
    response = upload(host, party, fields, size)
    assert response["Content-Type"] == "application/json"
    body = response.json()
    given_fields = {}
    for name, value in fields:
        given_fields.setdefault(name.decode(), []).append(value)
    fit, model = given_fields.get("fit"), given_fields.get("model")
    if response.status_code != 201:
        assert response.status_code == 400, body
        assert body["error"]["code"] in {"invalid_fit", "unknown_model"}, body
        assert (Upload.objects.count(), stored_files(settings)) == before
    else:
        # Taken only as sent: each field once, a documented value exactly, no trimming.
        assert fit is None or (len(fit) == 1 and fit[0] in (b"crop", b"pad")), fields
        assert model is None or (len(model) == 1 and model[0].decode() in all_presets())
        assert fit is not None or model is None
        if fit is None:
            assert "fit" not in body and (body["width"], body["height"]) == size
        else:
            preset = all_presets()[model[0].decode()] if model else default_preset()
            assert (body["fit"]["how"], body["fit"]["model"]) == (fit[0].decode(), preset.name)
            for side, name in ((body["width"], "width"), (body["height"], "height")):
                low, high = preset.limits[name]
                assert low <= side <= high and side % fitting.MULTIPLE == 0, body
            assert body["fit"]["to"] == [body["width"], body["height"]]
    # The endpoint still takes a plain upload.
    assert upload(host, party, [(b"fit", b"pad")]).status_code == 201


# --- presence: the party socket's query parameter ----------------------------------------------

presence_values = st.one_of(
    st.sampled_from(["1", "0", "true", "false", "", "yes", "on", "TRUE", " 1", "1 ", "2", "-1"]),
    any_text,
).map(as_bytes) | st.binary(max_size=30)

ON, OFF = {"1", "true"}, {"", "0", "false"}


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(presence_values, min_size=1, max_size=2))
@example(values=[b"yes"])
@example(values=[b"\xed\xa0\x80"])
@example(values=[b"1", b""])  # the last, empty, turns it off
@example(values=[b"null", b""])
def test_a_hostile_presence_parameter_is_refused_or_taken_as_documented(host, party, values):
    party.refresh_from_db()
    query = "&".join(f"presence={quote_from_bytes(value)}" for value in values)
    # What the server reads: the last value, decoded as parse_qs decodes it.
    last = values[-1].decode("utf-8", "replace")

    async def talk():
        ws = host.websocket(party.code, since=f"{party.last_seq}&{query}")
        assert (await ws.connect())[0]
        if last not in ON | OFF:
            assert (await ws.receive_output(timeout=10))["code"] == CLOSE_BAD_REQUEST
            return
        await ws.send_json_to({"type": "association.add", "text": uuid.uuid4().hex})
        frames = await receive_until(ws, "association.added")
        kinds = [frame["type"] for frame in frames]
        assert ("presence" in kinds) == (last in ON), kinds
        assert "error" not in kinds
        await ws.disconnect()

    async_to_sync(talk)()


# --- search by meaning -------------------------------------------------------------------------

SEARCH_REFUSALS = {
    "invalid_query",
    "invalid_seed",
    "invalid_limit",
    "empty_query",
    "unknown_words",
    "invalid_character",
    "like_too_long",
}


@pytest.fixture
def pictures(offline_clip, settings, party, pm):
    """Images of the party whose embeddings are texts of the offline world: a search for one
    of these texts has a match."""
    from tests.party.test_search import add_image

    settings.PARTYHUB_SEARCH_MIN_SIMILARITY = None
    texts = ["a pink star", "two small blue squares", "a red circle on a white background"]
    for seed, text in enumerate(texts):
        embedding = scoring.embedding_bytes(scoring.text_embedding(text))
        add_image(party, pm, text, seed=seed, embedding=embedding)
    return texts


def world_words():
    from offline import world

    return sorted(world.vocabulary())


world_text = st.lists(
    st.sampled_from([*world_words(), *sorted(search_module.FUNCTION_WORDS), "chair", "zebra"]),
    min_size=1,
    max_size=45,
).map(" ".join)
search_values = st.one_of(
    world_text.map(str.encode),
    st.sampled_from(["7", "0", "200", "201", "4294967296", "-1", "1e3", "٣", " 5 "]).map(
        str.encode
    ),
    any_text.map(as_bytes),
    st.binary(max_size=40),
)
search_params = st.dictionaries(
    st.sampled_from(["like", "q", "author", "seed", "model", "limit"]),
    st.lists(search_values, min_size=1, max_size=2),
    min_size=1,
)


def token_count(text):
    """How many tokens `text` is to the CLIP's tokenizer, start and end tokens left out."""
    return len(scoring.get_scorer().tokenizer.encode(text))


@FUZZ
@given(params=search_params)
@example(params={"like": [("a " * 30 + "pink star").encode()]})
def test_hostile_search_parameters_get_a_documented_answer_never_a_cut_one(
    host, party, pictures, params
):
    query = "&".join(
        f"{name}={quote_from_bytes(value)}" for name, values in params.items() for value in values
    )
    response = host.client.get(f"/api/parties/{party.code}/search?{query}")
    assert response["Content-Type"] == "application/json"
    body = response.json()
    if response.status_code != 200:
        assert response.status_code == 400, body
        assert body["error"]["code"] in SEARCH_REFUSALS & DOCUMENTED, body
        return
    assert set(body) == {"results", "nearest", "min_similarity", "unknown_words", "clip"}
    limit = int(params["limit"][-1].decode().strip() or 50) if "limit" in params else 50
    assert len(body["results"]) + len(body["nearest"]) <= limit
    like = params.get("like", [b""])[-1].decode("utf-8", "replace").strip()
    if not like:
        assert (body["nearest"], body["min_similarity"], body["unknown_words"]) == ([], None, [])
        assert all(result["score"] is None for result in body["results"])
        return
    # By meaning: the whole text was read (nothing cut at the CLIP's context), the matches are
    # at or above the cut-off, the nearest below it, and the unknown words are the text's own.
    tokenizer = scoring.get_scorer().tokenizer
    assert token_count(like) <= tokenizer.context_length - 2, like
    cutoff = body["min_similarity"]
    assert cutoff == search_module.MIN_SIMILARITY[scoring.OFFLINE_CLIP]
    assert all(result["score"] >= cutoff for result in body["results"])
    assert all(result["score"] < cutoff for result in body["nearest"]) and len(body["nearest"]) <= 6
    words = re.findall(r"[a-z]+", like.lower())
    assert all(word in words for word in body["unknown_words"])
    assert not set(body["unknown_words"]) & set(scoring.vocabulary())


def test_the_search_still_answers_after_hostile_ones(host, party, pictures):
    """The offline CLIP answers the texts it was given as pictures, each as its best match."""
    for text in pictures:
        response = host.client.get(f"/api/parties/{party.code}/search", {"like": text})
        assert response.status_code == 200
        assert response.json()["results"][0]["prompt"] == text
