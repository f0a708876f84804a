"""The party talks: chat lines, comments on images and prompts, reactions, the pinned question
and hiding messages, from every role's side."""

import json

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ApiError
from partyhub import actions, consumers
from partyhub.models import Event, Member, Message, Reaction
from partyhub.snapshot import snapshot
from tests.conftest import receive_until

pytestmark = pytest.mark.django_db(transaction=True)


def payloads(party, event_type):
    return [event.payload for event in Event.objects.filter(party=party, type=event_type)]


@pytest.fixture
def facilitator(party):
    return party.join("facilitator-session", "Cy", role=Member.Role.FACILITATOR)


def test_it_posts_a_chat_line_everyone_sees_in_the_archive_and_the_snapshot(party, member):
    actions.handle(member.pk, {"type": "chat.send", "text": "  who is lonelier?  "})
    (posted,) = payloads(party, "chat.posted")
    said = Message.objects.get()
    assert posted["message"] == said.as_dict()
    assert (said.text, said.kind, said.author, said.image, said.prompt) == (
        "who is lonelier?",
        "chat",
        member,
        None,
        None,
    )
    snap = snapshot(party)
    assert [m["text"] for m in snap["chat"]] == ["who is lonelier?"]
    assert snap["chat_earlier"] is False and snap["comments"] == []


def test_a_chat_line_mentions_one_image_or_one_prompt_of_the_party(party, member, image, refused):
    prompt = image.render.prompt
    actions.handle(member.pk, {"type": "chat.send", "text": "look", "image": image.pk})
    actions.handle(member.pk, {"type": "chat.send", "text": "this one", "prompt": prompt.pk})
    assert [(m["image"], m["prompt"]) for m in snapshot(party)["chat"]] == [
        (image.pk, None),
        (None, prompt.pk),
    ]
    both = {"type": "chat.send", "text": "x", "image": image.pk, "prompt": prompt.pk}
    assert refused(member, both) == "invalid_field"
    assert refused(member, {"type": "chat.send", "text": "x", "image": 10**9}) == "unknown_image"
    assert refused(member, {"type": "chat.send", "text": "x", "prompt": "1"}) == "invalid_field"
    assert Message.objects.count() == 2


def test_comments_belong_to_exactly_one_image_or_prompt(party, member, image, refused):
    prompt = image.render.prompt
    actions.handle(member.pk, {"type": "comment.add", "text": "the bench!", "image": image.pk})
    actions.handle(member.pk, {"type": "comment.add", "text": "add rain", "prompt": prompt.pk})
    comments = snapshot(party)["comments"]
    assert [(c["kind"], c["image"], c["prompt"]) for c in comments] == [
        ("comment", image.pk, None),
        ("comment", None, prompt.pk),
    ]
    assert [e["message"]["text"] for e in payloads(party, "comment.added")] == [
        "the bench!",
        "add rain",
    ]
    assert refused(member, {"type": "comment.add", "text": "where?"}) == "invalid_field"
    assert snapshot(party)["chat"] == []


def test_a_comment_on_another_partys_image_is_refused(party, member, image, refused):
    from partyhub.models import Party

    other, _ = Party.start(topic="other", session_key="elsewhere", host_name="Zed")
    stranger = other.join("stranger-session", "Yu")
    message = {"type": "comment.add", "text": "mine now", "image": image.pk}
    assert refused(stranger, message) == "unknown_image"
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "text", ["", "   ", "x" * 501, 5, None, ["a"], "\u200b\u200f\u2066", "a" + "\n" * 12 + "b"]
)
def test_it_refuses_text_that_is_no_message_and_changes_nothing(party, member, text, refused):
    seq = party.events.count()
    assert refused(member, {"type": "chat.send", "text": text}) == "invalid_text"
    assert not Message.objects.exists() and party.events.count() == seq


@pytest.mark.parametrize("text", ["\x00", "a\ud800b"])
def test_it_refuses_text_nothing_can_store(party, member, text, refused):
    assert refused(member, {"type": "chat.send", "text": text}) == "invalid_character"
    assert not Message.objects.exists()


def test_a_repeated_client_id_says_it_once(party, member):
    message = {"type": "chat.send", "text": "hello", "client_id": "c-1"}
    actions.handle(member.pk, message)
    actions.handle(member.pk, {**message, "text": "hello again"})
    assert [m.text for m in Message.objects.all()] == ["hello"]
    assert len(payloads(party, "chat.posted")) == 1
    assert payloads(party, "chat.posted")[0]["message"]["client_id"] == "c-1"


@pytest.mark.parametrize("role", [r for r in Member.Role if r != Member.Role.PROMPT_MASTER])
def test_every_role_talks_comments_and_reacts(party, member, image, role):
    member.role = role
    member.save()
    actions.handle(member.pk, {"type": "chat.send", "text": "hi"})
    actions.handle(member.pk, {"type": "comment.add", "text": "nice", "image": image.pk})
    actions.handle(
        member.pk, {"type": "reaction.set", "image": image.pk, "reaction": "love", "on": True}
    )
    assert Message.objects.filter(author=member).count() == 2
    assert Reaction.objects.filter(member=member).count() == 1


def test_a_muted_member_reacts_but_does_not_talk(party, pm, member, image, refused):
    pm.mute(member, True)
    assert refused(member, {"type": "chat.send", "text": "hi"}) == "muted"
    comment = {"type": "comment.add", "text": "hi", "image": image.pk}
    assert refused(member, comment) == "muted"
    actions.handle(
        member.pk, {"type": "reaction.set", "image": image.pk, "reaction": "wow", "on": True}
    )
    assert not Message.objects.exists() and Reaction.objects.count() == 1


def test_a_removed_member_does_nothing_at_all(party, pm, member, image, refused):
    actions.handle(member.pk, {"type": "chat.send", "text": "before"})
    pm.remove(member)
    for message in [
        {"type": "chat.send", "text": "hi"},
        {"type": "comment.add", "text": "hi", "image": image.pk},
        {"type": "reaction.set", "image": image.pk, "reaction": "wow", "on": True},
    ]:
        assert refused(member, message) == "removed"
    # What they said stays, under their name.
    assert [m["author"] for m in snapshot(party)["chat"]] == [member.pk]


def test_reactions_count_per_object_and_member(party, pm, member, image, refused):
    prompt = image.render.prompt
    love = {"type": "reaction.set", "image": image.pk, "reaction": "love", "on": True}
    actions.handle(member.pk, love)
    actions.handle(member.pk, love)  # a double click changes nothing
    actions.handle(pm.pk, love)
    actions.handle(pm.pk, {**love, "reaction": "fire"})
    actions.handle(
        pm.pk, {"type": "reaction.set", "prompt": prompt.pk, "reaction": "think", "on": True}
    )
    actions.handle(member.pk, {**love, "on": False})
    assert [
        (e["reaction"], e["member"], e["on"], e["count"])
        for e in payloads(party, "reaction.changed")
    ] == [
        ("love", member.pk, True, 1),
        ("love", pm.pk, True, 2),
        ("fire", pm.pk, True, 1),
        ("think", pm.pk, True, 1),
        ("love", member.pk, False, 1),
    ]
    mine = snapshot(party, pm)
    assert mine["images"][0]["reactions"] == {"love": 1, "fire": 1}
    assert mine["images"][0]["reacted"] == ["love", "fire"]
    assert mine["prompts"][0]["reactions"] == {"think": 1}
    assert snapshot(party, member)["images"][0]["reacted"] == []
    assert refused(member, {**love, "reaction": "poop"}) == "invalid_reaction"
    assert refused(member, {**love, "on": 1}) == "invalid_field"
    assert refused(member, {"type": "reaction.set", "reaction": "love", "on": True}) == (
        "invalid_field"
    )


@pytest.mark.parametrize("moderator", ["pm", "facilitator"])
def test_a_moderator_hides_a_message_from_every_reading_of_it(
    party, member, image, request, moderator, client
):
    moderator = request.getfixturevalue(moderator)
    actions.handle(member.pk, {"type": "chat.send", "text": "something rude"})
    actions.handle(member.pk, {"type": "comment.add", "text": "ruder", "image": image.pk})
    chat, comment = Message.objects.order_by("pk")
    for said in (chat, comment):
        actions.handle(moderator.pk, {"type": "message.hide", "message": said.pk})

    for said in (chat, comment):
        said.refresh_from_db()
        assert said.hidden and said.hidden_by == moderator and said.text  # kept in the row
    archive = [event.as_frame() for event in party.events.all()]
    assert not any("rude" in frame for frame in archive)
    hidden = payloads(party, "message.hidden")
    assert [(e["hidden"], e["message"]["text"], e["by"]) for e in hidden] == [
        (True, None, moderator.pk),
        (True, None, moderator.pk),
    ]
    snap = snapshot(party)
    assert (snap["chat"][0]["text"], snap["chat"][0]["hidden"]) == (None, True)
    assert snap["comments"][0]["text"] is None

    # Shown again: every carrier has the text back, and hiding once more takes it away again.
    actions.handle(moderator.pk, {"type": "message.hide", "message": chat.pk, "hidden": False})
    assert [e["message"]["text"] for e in payloads(party, "chat.posted")] == ["something rude"]
    actions.handle(moderator.pk, {"type": "message.hide", "message": chat.pk})
    assert not any("rude" in event.as_frame() for event in party.events.all())
    assert [e["hidden"] for e in payloads(party, "message.hidden")] == [True, True, False, True]


@pytest.mark.parametrize("role", ["participant", "art_expert"])
def test_only_a_facilitator_or_the_prompt_master_hides(party, pm, member, role, refused):
    actions.handle(pm.pk, {"type": "chat.send", "text": "keep me"})
    member.role = role
    member.save()
    said = Message.objects.get()
    assert refused(member, {"type": "message.hide", "message": said.pk}) == "forbidden"
    said.refresh_from_db()
    assert not said.hidden and not payloads(party, "message.hidden")
    assert refused(pm, {"type": "message.hide", "message": said.pk, "hidden": "yes"}) == (
        "invalid_field"
    )
    assert refused(pm, {"type": "message.hide", "message": 10**9}) == "unknown_message"


@pytest.mark.parametrize("moderator", ["pm", "facilitator"])
def test_a_moderator_pins_a_question_and_takes_it_down(party, request, moderator, refused):
    moderator = request.getfixturevalue(moderator)
    pin = {"type": "question.pin", "text": " What does loneliness look like from outside? "}
    actions.handle(moderator.pk, pin)
    actions.handle(moderator.pk, pin)  # the same again: nothing new to archive
    assert snapshot(party)["question"] == "What does loneliness look like from outside?"
    actions.handle(moderator.pk, {"type": "question.pin", "text": None})
    assert snapshot(party)["question"] is None
    assert [(e["question"], e["by"]) for e in payloads(party, "question.pinned")] == [
        ("What does loneliness look like from outside?", moderator.pk),
        (None, moderator.pk),
    ]
    for text in ["", "x" * 201, "two\nlines", 3, "\u200b"]:
        assert refused(moderator, {"type": "question.pin", "text": text}) == "invalid_text"


@pytest.mark.parametrize("role", ["participant", "art_expert"])
def test_only_a_facilitator_or_the_prompt_master_pins(party, member, role, refused):
    member.role = role
    member.save()
    assert refused(member, {"type": "question.pin", "text": "mine?"}) == "forbidden"
    assert snapshot(party)["question"] is None


def test_chat_and_comments_share_one_rate(party, member, image, settings, refused):
    settings.PARTYHUB_PARTY_MESSAGES_PER_MINUTE = 3
    for n in range(2):
        actions.handle(member.pk, {"type": "chat.send", "text": f"line {n}"})
    actions.handle(member.pk, {"type": "comment.add", "text": "nice", "image": image.pk})
    comment = {"type": "comment.add", "text": "one too many", "image": image.pk}
    assert refused(member, comment) == "rate_limited"
    assert refused(member, {"type": "chat.send", "text": "one too many"}) == "rate_limited"
    # A refused text costs nothing: it is checked before the rate is charged.
    assert refused(member, {"type": "chat.send", "text": ""}) == "invalid_text"
    assert Message.objects.count() == 3


def test_the_chat_pages_back_from_the_newest(party, member, host, guest, outsider):
    for n in range(7):
        actions.handle(member.pk, {"type": "chat.send", "text": f"line {n}"})
    page = guest.client.get(f"/api/parties/{party.code}/messages?limit=3").json()
    assert [m["text"] for m in page["messages"]] == ["line 4", "line 5", "line 6"]
    assert page["earlier"] is True
    before = page["messages"][0]["id"]
    page = guest.client.get(f"/api/parties/{party.code}/messages?before={before}&limit=3").json()
    assert [m["text"] for m in page["messages"]] == ["line 1", "line 2", "line 3"]
    page = guest.client.get(
        f"/api/parties/{party.code}/messages?before={page['messages'][0]['id']}"
    ).json()
    assert ([m["text"] for m in page["messages"]], page["earlier"]) == (["line 0"], False)
    for query in [
        "limit=0",
        "limit=101",
        "limit=x",
        "before=0",
        "before=-1",
        "before=²",
        "before=",
    ]:
        response = guest.client.get(f"/api/parties/{party.code}/messages?{query}")
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_page")
    assert outsider.client.get(f"/api/parties/{party.code}/messages").status_code == 403


# --- Over the socket: live to everyone, caught up after a reconnect ------------------------------


async def test_chat_is_live_for_everyone_and_caught_up_after_a_reconnect(party, host, guest):
    from partyhub.models import Party

    ann = host.websocket(party.code, since=party.last_seq)
    bob = guest.websocket(party.code, since=party.last_seq)
    assert (await ann.connect())[0] and (await bob.connect())[0]
    await bob.send_json_to({"type": "chat.send", "text": "hello all", "client_id": "b-1"})
    for socket in (ann, bob):
        frame = await socket.receive_json_from(timeout=10)
        assert (frame["type"], frame["message"]["text"]) == ("chat.posted", "hello all")
    seen = frame["seq"]
    await bob.disconnect()

    # While Bob is away Ann says two things and hides one; he comes back from what he saw.
    await ann.send_json_to({"type": "chat.send", "text": "oops, wrong party"})
    await ann.send_json_to({"type": "chat.send", "text": "where is everyone?"})
    wrong = (await ann.receive_json_from(timeout=10))["message"]["id"]
    await ann.send_json_to({"type": "message.hide", "message": wrong})
    await ann.send_json_to({"type": "question.pin", "text": "Who waits on the bench?"})
    await receive_until(ann, "question.pinned")
    last = await database_sync_to_async(lambda: Party.objects.get(pk=party.pk).last_seq)()
    bob = guest.websocket(party.code, since=seen)
    assert (await bob.connect())[0]
    frames = [await bob.receive_json_from(timeout=10) for _ in range(last - seen)]
    assert [f["seq"] for f in frames] == list(range(seen + 1, last + 1))
    assert [f["type"] for f in frames] == [
        "chat.posted",
        "chat.posted",
        "message.hidden",
        "question.pinned",
    ]
    # The hidden line comes back hidden: its text is in no frame Bob receives.
    assert (frames[0]["message"]["text"], frames[0]["message"]["hidden"]) == (None, True)
    assert frames[1]["message"]["text"] == "where is everyone?"
    assert "wrong party" not in json.dumps(frames)
    assert frames[3]["question"] == "Who waits on the bench?"
    await ann.disconnect()
    await bob.disconnect()


# --- Hostile text, generated ---------------------------------------------------------------------

any_text = st.text(st.characters(codec="utf-8"), max_size=600) | st.sampled_from(
    [
        "\u202eevil\u202c",
        "\u200f",
        "e\u0301" * 300,
        "🎉",
        "<script>x</script>",
        "a" * 501,
        "\n" * 20,
    ]
)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=any_text, kind=st.sampled_from(["chat.send", "comment.add"]))
def test_any_text_is_said_as_written_or_refused_whole(party, member, image, kind, text):
    """Whatever the text, the message is stored trimmed and otherwise exactly as sent (never cut,
    never "fixed"), or refused with a documented code and nothing stored."""
    before = (Message.objects.count(), party.events.count())
    message = {"type": kind, "text": text, "image": image.pk}
    try:
        actions.handle(member.pk, consumers._message(json.dumps(message)))
    except ApiError as error:
        assert error.code in ("invalid_text", "invalid_character", "rate_limited")
        assert (Message.objects.count(), party.events.count()) == before
        return
    said = Message.objects.latest("pk")
    assert said.text == text.strip() and said.text
    assert party.events.last().payload["message"]["text"] == text.strip()
