"""A Hypothesis state machine over what people do at a party (issue 7, item 15): join, leave and
come back, submit, refine, vote, cancel, chat (sending a line twice, as a client retrying
does), hide and show lines again, drop the connection and reconnect with `since`, while a worker
renders now and then. Two parties run side by side, so a frame reaching the wrong room
would show. After every step:

- nobody outside a party receives anything of it (outsiders are turned away; members of one
  party never get the other's frames);
- every connection has received each archived event after its `since` once, in order, no gaps;
- every render ends in at most one terminal state, and in exactly one once the queue is drained;
- no image is stored twice, and each party's archive has seqs 1..last_seq with no gap;
- a chat line sent twice with one client_id is said once; no archived event carries the text of
  a line while it is hidden, and no socket opened after it was hidden receives that text.

The sockets are Channels' in-process communicators on one event loop in a thread of its own (the
in-memory channel layer); renders are the overhead probe's, run by `run_render` in this thread.
"""

import asyncio
import json
import threading
from functools import partial

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db.models import Count
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from partyhub import actions
from partyhub.jobs.runner import run_render
from partyhub.models import Event, Image, Member, Message, Party, Prompt, Render
from tests.conftest import Person

pytestmark = pytest.mark.django_db(transaction=True)

PARAMS = {"model": "overhead-probe", "width": 64, "height": 64, "steps": 2}
TERMINAL = {"render.done", "render.failed", "render.cancelled", "render.filtered"}


class Loop:
    """An event loop in a thread of its own: the communicators live on it across the steps."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout=30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, func, *args):
        """Runs `func` in a thread of this loop, as a consumer or the embedded worker does, so
        its broadcasts reach the in-memory layer on this loop."""
        return self.run(database_sync_to_async(func)(*args))

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


class Connection:
    """One open socket of a person to a party, and every frame it received."""

    def __init__(self, loop, person, party, since):
        self.loop, self.person, self.party, self.since = loop, person, party, since
        self.ws = person.websocket(party.code, since=since)
        self.frames, self.closed = [], None
        self.connected = loop.run(self._connect())

    async def _connect(self):
        connected, _ = await self.ws.connect()
        return connected

    def drain(self):
        """Reads what has arrived (waiting a moment for frames still on their way)."""
        self.loop.run(self._drain())

    async def _drain(self):
        while not await self.ws.receive_nothing(timeout=0.05, interval=0.01):
            output = await self.ws.receive_output()
            if output["type"] == "websocket.close":
                self.closed = output.get("code")
                return
            self.frames.append(json.loads(output["text"]))

    def send(self, message):
        self.loop.run(self.ws.send_json_to(message))

    def disconnect(self):
        self.loop.run(self.ws.disconnect())

    def seqs(self):
        return [f["seq"] for f in self.frames if "seq" in f]


class PartyMachine(RuleBasedStateMachine):
    loop = None  # one Loop for every example of a test run (set by the test)

    def __init__(self):
        super().__init__()
        # A fresh channel layer each example: no group or channel of the last one lingers.
        self.loop.run(get_channel_layer().flush())
        self.connections = {}  # (person index, party index) -> Connection
        self.closed_connections = []
        self.outsider_frames = []
        self.lines = 0  # chat lines sent: each says something no other line says
        self.opened = 0  # sockets opened so far
        self.hidden = {}  # text of a line hidden now -> how many sockets were open when it was

    @initialize()
    def start_parties(self):
        self.people = [Person(name) for name in ("Ann", "Bo", "Cy", "Di")]
        self.outsider = Person("Eve")
        self.parties = []
        for host in self.people[:2]:
            start = partial(
                Party.start, topic="tides", session_key=host.session_key, host_name=host.name
            )
            party, _ = self.loop.call(start)
            self.parties.append(party)

    # --- Who is where --------------------------------------------------------------------------

    def member(self, person, party):
        return Member.objects.filter(party=party, session_key=person.session_key).first()

    @rule(who=st.integers(0, 3), which=st.integers(0, 1))
    def join(self, who, which):
        person, party = self.people[who], self.parties[which]
        if self.member(person, party) is None:
            self.loop.call(party.join, person.session_key, person.name)

    @rule(who=st.integers(0, 3), which=st.integers(0, 1), join_first=st.booleans())
    def connect(self, who, which, join_first):
        """Connect (having joined over HTTP first, or not: then as an outsider), or reconnect
        with the last seq this person saw in this party."""
        person, party = self.people[who], self.parties[which]
        if join_first:
            self.join(who, which)
        if (who, which) in self.connections:
            return
        seen = [
            s
            for c in self.closed_connections
            if c.person is person and c.party == party
            for s in c.seqs()
        ]
        since = max(seen, default=0)
        connection = Connection(self.loop, person, party, since)
        self.opened += 1
        connection.number = self.opened
        if self.member(person, party) is None:
            connection.drain()
            assert connection.closed == 4403 and not connection.frames  # turned away
            return
        assert connection.connected
        self.connections[(who, which)] = connection

    @precondition(lambda self: self.connections)
    @rule(data=st.data())
    def disconnect(self, data):
        key = data.draw(st.sampled_from(sorted(self.connections)))
        connection = self.connections.pop(key)
        connection.drain()
        connection.disconnect()
        self.closed_connections.append(connection)

    @rule(which=st.integers(0, 1))
    def outsider_tries(self, which):
        connection = Connection(self.loop, self.outsider, self.parties[which], 0)
        connection.drain()
        assert connection.closed == 4403
        self.outsider_frames += connection.frames

    # --- What they do --------------------------------------------------------------------------

    def a_connection(self, data):
        """One of the open sockets (so the rules below act as a connected member)."""
        key = data.draw(st.sampled_from(sorted(self.connections)))
        return self.connections[key], self.parties[key[1]]

    def send(self, connection, message):
        connection.send(message)
        connection.drain()

    @precondition(lambda self: self.connections)
    @rule(data=st.data(), refine=st.booleans())
    def submit(self, data, refine):
        connection, party = self.a_connection(data)
        message = {"type": "prompt.submit", "text": f"tide {connection.person.name}"}
        parent = Prompt.objects.filter(party=party).order_by("-pk").first()
        if refine and parent is not None:
            message["parent"] = parent.pk
        self.send(connection, {**message, "params": PARAMS})

    @precondition(lambda self: self.connections)
    @rule(data=st.data(), value=st.sampled_from([0, 1]))
    def vote(self, data, value):
        connection, party = self.a_connection(data)
        image = Image.objects.filter(party=party).order_by("-pk").first()
        if image is not None:
            self.send(connection, {"type": "vote", "image": image.pk, "value": value})

    @precondition(lambda self: self.connections)
    @rule(data=st.data())
    def cancel(self, data):
        connection, party = self.a_connection(data)
        render = Render.objects.filter(party=party).order_by("-pk").first()
        if render is not None:
            self.send(connection, {"type": "render.cancel", "render": render.pk})

    @precondition(lambda self: self.connections)
    @rule(data=st.data())
    def chat(self, data):
        connection, _ = self.a_connection(data)
        self.lines += 1
        text = f"line {self.lines} of {self.parties[0].code}"  # the archive outlives an example
        line = {"type": "chat.send", "text": text, "client_id": f"c{self.lines}"}
        for _ in range(data.draw(st.integers(1, 2))):  # twice: a retry after a lost answer
            self.send(connection, line)

    @rule(which=st.integers(0, 1))
    def hide(self, which):
        """The host of a party (from a tab of their own) hides its newest line still shown."""
        self.moderate(which, hidden=True)

    @rule(which=st.integers(0, 1))
    def show_again(self, which):
        self.moderate(which, hidden=False)

    def moderate(self, which, hidden):
        party = self.parties[which]
        host = self.member(self.people[which], party)  # people[0] hosts parties[0], [1] [1]
        if hidden and not Message.objects.filter(party=party, hidden=False).exists():
            self.lines += 1  # something to hide: the host says it first
            text = f"line {self.lines} of {party.code}"
            self.loop.call(actions.handle, host.pk, {"type": "chat.send", "text": text})
        said = Message.objects.filter(party=party, hidden=not hidden).order_by("-pk").first()
        if said is None:
            return
        message = {"type": "message.hide", "message": said.pk, "hidden": hidden}
        self.loop.call(actions.handle, host.pk, message)
        if hidden:
            self.hidden[said.text] = self.opened
        else:
            self.hidden.pop(said.text)

    @rule()
    def worker_renders_one(self):
        render_id = Render.objects.next_queued_id()
        if render_id is not None:
            self.loop.call(run_render, render_id)

    # --- What must hold ------------------------------------------------------------------------

    @invariant()
    def nothing_reaches_outsiders_or_the_wrong_room(self):
        assert self.outsider_frames == []
        for (_, which), connection in self.connections.items():
            connection.drain()
            party = self.parties[which]
            renders = set(Render.objects.filter(party=party).values_list("pk", flat=True))
            prompts = set(Prompt.objects.filter(party=party).values_list("pk", flat=True))
            for frame in connection.frames:
                if frame["type"] == "render.progress":
                    assert frame["render"] in renders
                if isinstance(frame.get("prompt"), dict):
                    assert frame["prompt"]["id"] in prompts

    @invariant()
    def each_connection_got_every_event_after_since_once_in_order(self):
        for connection in list(self.connections.values()) + self.closed_connections:
            seqs = connection.seqs()
            assert seqs == list(range(connection.since + 1, connection.since + 1 + len(seqs)))

    @invariant()
    def renders_end_once_and_images_are_stored_once(self):
        ends = (
            Event.objects.filter(type__in=TERMINAL)
            .values("party", "payload__render")
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
        )
        assert not ends.exists()
        assert not Image.objects.values("file").annotate(n=Count("pk")).filter(n__gt=1).exists()

    @invariant()
    def lines_are_said_once_and_hidden_ones_are_unsaid(self):
        said = Message.objects.filter(party__in=self.parties)
        assert not said.values("text").annotate(n=Count("pk")).filter(n__gt=1)
        for text, opened_before in self.hidden.items():
            assert not any(text in event.as_frame() for event in Event.objects.all())
            for connection in self.connections.values():
                if connection.number > opened_before:
                    connection.drain()
                    assert all(text not in json.dumps(frame) for frame in connection.frames)

    @invariant()
    def archives_have_no_gaps(self):
        for party in self.parties:
            party.refresh_from_db()
            # The embedded worker may archive a render's end between these two reads: the
            # events up to the seq read first are the ones that must have no gap.
            seqs = list(
                Event.objects.filter(party=party, seq__lte=party.last_seq)
                .order_by("seq")
                .values_list("seq", flat=True)
            )
            assert seqs == list(range(1, party.last_seq + 1))

    def teardown(self):
        try:
            # Drain the queue: then every render has ended, exactly once.
            while (render_id := Render.objects.next_queued_id()) is not None:
                self.loop.call(run_render, render_id)
            for render in Render.objects.all():
                assert render.status in Render.TERMINAL
                ends = Event.objects.filter(type__in=TERMINAL, payload__render=render.pk)
                assert ends.count() == 1
        finally:
            for connection in self.connections.values():
                connection.disconnect()


def test_a_party_keeps_its_promises_whatever_people_do(settings_fixture):
    PartyMachine.loop = Loop()
    machine = settings(
        max_examples=20,
        stateful_step_count=30,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )(PartyMachine)
    try:
        machine.TestCase().runTest()
    finally:
        PartyMachine.loop.close()


@pytest.fixture
def settings_fixture(settings):
    settings.PARTYHUB_OVERHEAD_PROBE = True
    settings.PARTYHUB_PARTY_RENDERS_PER_MINUTE = 10_000
    return settings
