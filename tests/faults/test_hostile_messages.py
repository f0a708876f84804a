"""Hostile input, generated: every message type of the party socket and every JSON endpoint is
sent strings that cannot be stored (lone surrogates, NUL) or merely strange (RTL, combining
marks, very long runs), at any depth, and structures of the wrong shape (every field of the
wrong type, nesting past the parser's limit). Each is refused with a documented code, or taken;
nothing is half-applied, the socket stays usable, and every page of the party still answers.

Kept in one piece (past 400 lines): one set of Hypothesis strategies feeds every message type
and endpoint, so a new one is fuzzed by adding it to the table here."""

import io
import json
import re
import uuid
import zipfile
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import inbound
from core.errors import ApiError
from core.inbound import MAX_DEPTH
from generation.params import KNOWN_PARAMS
from partyhub import actions, consumers
from partyhub.models import Association, Party, Prompt
from streams.models import Stream

pytestmark = pytest.mark.django_db(transaction=True)

PROTOCOL = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


def documented_codes():
    """The codes in the protocol document's error tables (the Errors section and the stream
    submission table)."""
    errors = PROTOCOL[PROTOCOL.index("## Errors") : PROTOCOL.index("## Generation params")]
    streams = PROTOCOL[PROTOCOL.index("### Submitting to a stream") :]
    rows = [line for line in (errors + streams).splitlines() if line.startswith("|")]
    return set(re.findall(r"`([a-z_]+)`", "\n".join(rows)))


DOCUMENTED = documented_codes()
UNSTORABLE = ["\ud800", "\udfff", "\udfff\ud800", "\x00"]  # a reversed pair is two lone halves
STRANGE = ["\u202eevil\u202c", "\u200f", "e\u0301\u0301\u0301", "🎉", "<b>x</b>", "a" * 5000]

# Text that must be refused: anything with at least one lone surrogate or NUL in it.
unstorable_text = st.builds(
    lambda before, bad, after: before + bad + after,
    st.text(max_size=20),
    st.sampled_from(UNSTORABLE) | st.characters(categories=["Cs"]),
    st.text(max_size=20),
)
# Text that is strange but storable: may be taken or refused, never a crash.
strange_text = st.sampled_from(STRANGE) | st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), max_size=200
)


def nested(depth, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


wrong_type = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.integers(min_value=MAX_DEPTH, max_value=MAX_DEPTH + 5).map(lambda d: nested(d, "deep")),
)


# Values a field may well take, so that messages get past the first checks to the deeper ones.
plausible = st.one_of(
    st.integers(min_value=0, max_value=6),  # ids of what the party holds, a vote's value
    st.sampled_from(["style", "artist", "art_expert", "facilitator", "a red circle", "txt2img"]),
    st.fixed_dictionaries(
        {}, optional={name: strange_text | wrong_type for name in sorted(KNOWN_PARAMS)}
    ),
)


def field_value(bad_text):
    """A field's value: text (bad or strange), a wrong type, a plausible value, or text hidden
    deeper inside."""
    text = unstorable_text if bad_text else strange_text
    return st.one_of(
        text,
        st.lists(text, min_size=1, max_size=3),
        st.dictionaries(st.sampled_from(sorted(KNOWN_PARAMS)), text, min_size=1, max_size=3),
        *([] if bad_text else [wrong_type, plausible]),
    )


@st.composite
def client_messages(draw, bad_text):
    """A message of a real type with its own fields, each of them hostile; with `bad_text`,
    at least one string somewhere holds a lone surrogate or a NUL."""
    kind = draw(st.sampled_from(sorted(actions.MESSAGES)))
    required, optional = actions.MESSAGES[kind]
    extra = draw(st.lists(st.sampled_from(sorted(optional)), unique=True)) if optional else []
    fields = sorted(required) + extra
    message = {"type": kind}
    for name in fields:
        message[name] = draw(field_value(bad_text=False))
    if bad_text:
        where = draw(st.sampled_from([*fields, "params.negative", "params.walk_to", "key"]))
        if where == "key":
            message[draw(unstorable_text)] = 1
        elif where.startswith("params."):
            message["params"] = {where.split(".")[1]: draw(unstorable_text)}
        else:
            message[where] = draw(field_value(bad_text=True))
    return message


def depth(value):
    if isinstance(value, dict):
        return 1 + max(map(depth, [*value, *value.values()]), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def refusals(message):
    """The codes that may refuse a message holding unstorable text: that one, or too_deep
    first if it also nests too deep (either refusal stores nothing)."""
    return {"invalid_character"} | ({"too_deep"} if depth(message) > MAX_DEPTH else set())


def as_frame(message):
    # ensure_ascii writes a lone surrogate as the escape "\ud800", as a hostile client would.
    return json.dumps(message, ensure_ascii=True)


def answer(member, frame):
    """What the party socket does with one text frame: None if applied, else the error code."""
    try:
        actions.handle(member.pk, consumers._message(frame))
    except ApiError as error:
        return error.code
    return None


def stored(party):
    party.refresh_from_db()
    return (party.last_seq, party.prompts.count(), party.associations.count(), party.palette)


HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@HYPOTHESIS
@given(message=client_messages(bad_text=True))
def test_text_that_cannot_be_stored_is_refused_in_any_message_at_any_depth(pm, party, message):
    before = stored(party)
    assert answer(pm, as_frame(message)) in refusals(message)
    assert stored(party) == before


@HYPOTHESIS
@given(message=client_messages(bad_text=False))
def test_strange_messages_get_a_documented_answer(pm, party, image, message):
    code = answer(pm, as_frame(message))
    assert code is None or code in DOCUMENTED, (code, message)


@pytest.mark.parametrize(
    "frame, code",
    [
        ('{"type": []}', "unknown_type"),
        ('{"type": {}}', "unknown_type"),
        ('{"type": 1.5}', "unknown_type"),
        ("[" * 30_000 + "]" * 30_000, "too_deep"),  # past the parser's recursion limit
        ('{"type": "vote", "image": ' + "[" * 60 + "]" * 60 + "}", "too_deep"),
        ('{"type": "vote", "image": NaN, "value": 1}', "invalid_json"),
        ('{"type": "vote", "image": 1e999, "value": 1}', "invalid_json"),
        ('{"type": "vote", "image": ' + "9" * 5000 + ', "value": 1}', "invalid_json"),
        ('{"type": "vote", "image": ' + "9" * 30 + ', "value": 1}', "unknown_image"),
        ('{"type": "association.add", "text": "\\ud800"}', "invalid_character"),
        ('{"type": "association.add", "\\udfff": "x", "text": "x"}', "invalid_character"),
    ],
)
def test_malformed_structure_gets_its_code(pm, party, frame, code):
    assert len(frame.encode()) < inbound.MAX_MESSAGE_BYTES
    before = stored(party)
    assert answer(pm, frame) == code
    assert stored(party) == before
    assert code in DOCUMENTED


# --- Over a real socket: the error frame comes, and the socket goes on -------------------------


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    messages=st.lists(
        client_messages(bad_text=True) | client_messages(bad_text=False), min_size=10, max_size=10
    )
)
def test_the_socket_answers_each_hostile_frame_and_stays_usable(
    host, party, pm, settings, messages
):
    settings.PARTYHUB_WS_MESSAGE_BURST = 1000

    async def talk():
        socket = host.websocket(party.code, since=party.last_seq)
        connected, _ = await socket.connect()
        assert connected
        frames = [as_frame(m) for m in messages] + ['{"type": []}', "[" * 60_000]
        for frame in frames:
            await socket.send_to(text_data=frame)
        answers = []
        while len([a for a in answers if a["type"] == "error"]) < 2:
            answers.append(await socket.receive_json_from(timeout=30))
        word = f"canary {uuid.uuid4().hex[:8]}"
        await socket.send_json_to({"type": "association.add", "text": word})
        while True:  # the socket still works: the canary comes back as an event
            frame = await socket.receive_json_from(timeout=30)
            if frame["type"] == "association.added" and frame["association"]["text"] == word:
                break
            answers.append(frame)
        await socket.disconnect()
        return answers

    answers = async_to_sync(talk)()
    errors = [frame["code"] for frame in answers if frame["type"] == "error"]
    assert set(errors) <= DOCUMENTED
    assert "server_error" not in errors


# --- HTTP: every JSON endpoint ----------------------------------------------------------------


@pytest.fixture
def stream(db):
    return Stream.objects.create(slug="rings", title="Rings", topic="circles and rings")


@pytest.fixture
def endpoints(host, outsider, party, stream):
    """Every endpoint that reads a JSON body: who may post to it, and the fields it takes. The
    party's Prompt Master for the party's, an account for the stream's."""
    outsider.client.force_login(User.objects.create_user("mia", password="an unusual phrase"))
    return [
        (host.client, "/api/parties", ["topic", "title", "public", "steered", "name"]),
        (host.client, f"/api/parties/{party.code}/join", ["name"]),
        (host.client, f"/api/parties/{party.code}/publish", ["published"]),
        (outsider.client, f"/api/streams/{stream.slug}/prompts", ["text"]),
        (host.client, "/api/models/offline/tokens", ["text"]),
    ]


@st.composite
def bodies(draw, fields, bad_text):
    body = {name: draw(field_value(bad_text=False)) for name in fields}
    if bad_text:
        body[draw(st.sampled_from(fields))] = draw(field_value(bad_text=True))
    return body


def counts():
    return (Party.objects.count(), Prompt.objects.count(), Association.objects.count())


@HYPOTHESIS
@given(data=st.data())
def test_json_endpoints_refuse_text_that_cannot_be_stored(endpoints, party, data):
    client, path, fields = data.draw(st.sampled_from(endpoints))
    body = data.draw(bodies(fields, bad_text=True))
    before = (counts(), stored(party))
    response = client.post(path, as_frame(body), content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in refusals(body)
    assert (counts(), stored(party)) == before


@HYPOTHESIS
@given(data=st.data())
def test_json_endpoints_answer_strange_bodies_with_json(endpoints, data):
    client, path, fields = data.draw(st.sampled_from(endpoints))
    body = data.draw(bodies(fields, bad_text=False) | wrong_type)
    response = client.post(path, as_frame(body), content_type="application/json")
    assert response.status_code < 500 and response["Content-Type"] == "application/json"
    if response.status_code >= 400:
        assert response.json()["error"]["code"] in DOCUMENTED


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    "content_type, body",
    [
        ("multipart/form-data", b"no boundary"),
        ("multipart/form-data; boundary=b", b"--b\r\nbroken"),
        ("application/json", b'{"topic": "' + b"x" * (3 * 1024 * 1024) + b'"}'),
        ("application/x-www-form-urlencoded", "&".join(f"f{i}=1" for i in range(2000)).encode()),
        ("application/json", b"[" * 100_000),
        ("application/json", b'{"topic": "\xff\xfe"}'),
    ],
)
def test_unreadable_bodies_get_json_errors_whatever_debug_is(
    settings, party, host, debug, content_type, body
):
    """Through the CSRF check, as a browser's POST comes, which reads the form body first."""
    from django.test import Client

    settings.DEBUG = debug
    client = Client(enforce_csrf_checks=True)
    client.cookies["sessionid"] = host.session_key
    client.get("/")
    token = client.cookies["csrftoken"].value
    for path in ("/api/parties", f"/api/parties/{party.code}/uploads"):
        response = client.post(path, body, content_type=content_type, HTTP_X_CSRFTOKEN=token)
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] in DOCUMENTED
    assert Party.objects.count() == 1


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_api_address_is_a_json_404(settings, client, debug):
    settings.DEBUG = debug
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_numbers_python_will_not_convert_are_errors(host, party):
    huge = "9" * 5000
    response = host.client.get(f"/api/parties/{party.code}/search", {"seed": huge})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_seed")
    response = host.client.get(f"/api/parties/{party.code}/events", {"since": huge})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_since")
    response = host.client.post(
        "/api/parties", f'{{"topic": "tides", "public": {huge}}}', content_type="application/json"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")
    assert host.client.get("/s/rings/", {"before": huge}).status_code == 404  # no such stream


def test_a_stream_page_with_a_huge_before_shows_the_newest(host, stream):
    for before in ("9" * 5000, "²", "-1"):
        assert host.client.get(f"/s/{stream.slug}/", {"before": before}).status_code == 200


# --- Afterwards: the party's pages still answer -----------------------------------------------


def test_a_party_that_had_every_hostile_input_still_exports_and_publishes(host, party, pm, member):
    """Every message type with every unstorable and strange string, then a render of what was
    taken: the room, the snapshot, the replay, the export and the gallery all answer 200."""
    from partyhub.jobs.runner import run_render

    for kind, (required, _) in actions.MESSAGES.items():
        for text in UNSTORABLE + STRANGE:
            for who in (pm, member):
                message = {"type": kind, **{name: text for name in required}}
                answer(who, as_frame(message))
    for text in STRANGE:
        answer(pm, as_frame({"type": "palette.add", "kind": "style", "text": text}))
        answer(
            pm,
            as_frame(
                {"type": "prompt.submit", "text": "a red circle", "params": {"negative": text}}
            ),
        )
    for render in party.renders.all():
        run_render(render.pk)
    assert party.associations.exists() and party.prompts.exists()
    image = party.images.first()
    if image is not None:
        answer(pm, as_frame({"type": "pick", "image": image.pk, "note": STRANGE[0]}))
        for text in STRANGE:  # the talk around it: what the publication quotes
            answer(member, as_frame({"type": "comment.add", "text": text, "image": image.pk}))
            answer(member, as_frame({"type": "chat.send", "text": text, "image": image.pk}))
        answer(pm, as_frame({"type": "message.hide", "message": party.messages.last().pk}))
    assert party.messages.filter(hidden=False).count() > len(STRANGE)

    for path in (
        "/p/{}/",
        "/api/parties/{}",
        "/p/{}/replay/",
        "/p/{}/stage/",
        "/api/parties/{}/events",
    ):
        assert host.client.get(path.format(party.code)).status_code == 200, path
    response = host.client.get(f"/p/{party.code}/export.zip")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None
    manifest = json.loads(archive.read("manifest.json"))
    assert {a["text"] for a in manifest["associations"]} & set(STRANGE)
    publish = host.post_json(f"/api/parties/{party.code}/publish", {"published": True})
    assert publish.status_code == 200
    assert host.client.get(f"/g/{party.code}/").status_code == 200


async def test_oversized_frames_count_against_the_connections_budget(host, party):
    """Each frame counts its size, up to 64 KiB, against the byte budget (256 KiB at once): a
    flood of oversized frames is refused as a flood once the burst is spent."""
    socket = host.websocket(party.code, since=party.last_seq)
    assert (await socket.connect())[0]
    codes = []
    for _ in range(6):
        await socket.send_to(text_data="x" * (inbound.MAX_MESSAGE_BYTES + 1))
        codes.append((await socket.receive_json_from(timeout=10))["code"])
    assert codes == ["message_too_large"] * 4 + ["rate_limited"] * 2
    await socket.disconnect()
