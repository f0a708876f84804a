import asyncio
import hashlib
import logging
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings

from core import inbound
from core.errors import ApiError
from core.inbound import MAX_MESSAGE_BYTES
from core.live import MALFORMED, LiveConsumer, query_since
from partyhub import actions, presence
from partyhub.models import Party
from partyhub.models.prompt import CLIENT_ID

# Close codes (4000-4999 are the application's): the client can tell why it was turned away.
CLOSE_BAD_REQUEST = 4400
CLOSE_SIGNED_OUT = 4401
CLOSE_NOT_MEMBER = 4403
CLOSE_NO_PARTY = 4404
REPLAY_BATCH = 500

log = logging.getLogger(__name__)


class PartyConsumer(LiveConsumer):
    """A member's live connection to a party: replays the archive after `since`, then streams.

    Every archived event is sent exactly once and in seq order: events already sent are dropped,
    and a gap (a broadcast the channel layer lost, or two that arrived out of order) is filled
    from the archive before the newer event goes out. A lost event that no other follows is
    caught by a periodic resync. A member who reads too slowly is sent no events until the
    connection drains, then what was missed from the archive; live progress in between is
    dropped.

    Every socket counts towards the room's presence (partyhub/presence.py); one opened with
    `presence=1` is also sent `presence` frames, the members online, on connecting and whenever
    they change (opt-in: clients written before presence see the frames they always saw).
    """

    async def connect(self):
        self.member_id = None
        self.resync = None
        self.sent_seq = 0
        self.shown_online = None
        self.wants_presence = _query_flag(self.scope, "presence")
        since = query_since(self.scope)
        since = 0 if since is None else since
        code = self.scope["url_route"]["kwargs"]["code"]
        session_key = self.scope["session"].session_key
        party, member = await _party_and_member(code, session_key)
        await self.accept()
        if party is None:
            return await self.close(code=CLOSE_NO_PARTY)
        if member is None:
            return await self.close(code=CLOSE_NOT_MEMBER)
        # A since beyond the archive would make every new event look already sent.
        if since is MALFORMED or since > party.last_seq or self.wants_presence is MALFORMED:
            return await self.close(code=CLOSE_BAD_REQUEST)
        self.party_id, self.member_id, self.sent_seq = party.pk, member.pk, since
        self.group, self.session_group = party.group, session_group(session_key)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.channel_layer.group_add(self.session_group, self.channel_name)
        await self._send_archive_until(None)
        arrived = self.member_id not in await sync_to_async(presence.online)(self.party_id)
        online = await sync_to_async(presence.stamp)(
            self.party_id, self.member_id, self.channel_name
        )
        await self._send_presence(online)
        if arrived:  # the member's first socket (a second tab changes nothing for the others)
            await self.channel_layer.group_send(self.group, {"type": "party.presence"})
        self.resync = asyncio.create_task(self._ask_for_resyncs())

    async def disconnect(self, close_code):
        if self.resync is not None:
            self.resync.cancel()
        if self.member_id is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.channel_layer.group_discard(self.session_group, self.channel_name)
            await self._leave_the_room()

    async def _leave_the_room(self):
        if self.resync is not None:
            self.resync.cancel()  # its next stamp would bring the socket back
        online = await sync_to_async(presence.leave)(
            self.party_id, self.member_id, self.channel_name
        )
        if self.member_id not in online:  # the member's last socket closed
            await self.channel_layer.group_send(self.group, {"type": "party.presence"})

    async def _ask_for_resyncs(self):
        # The resync travels as a message to this consumer, so it runs between the handlers of
        # other messages, never beside one of them.
        while True:
            await asyncio.sleep(settings.PARTYHUB_RESYNC_SECONDS)
            await self.channel_layer.send(self.channel_name, {"type": "party.resync"})

    def connection_drained(self):
        if self.member_id is not None:
            self.ask_self("party.resync")

    async def receive(self, text_data=None, bytes_data=None):
        if self.member_id is None:
            return
        message = None
        try:
            # Charged before anything else is done with the frame: a flood is refused cheaply.
            self.charge(text_data, bytes_data)
            message = _message(text_data)
            await database_sync_to_async(actions.handle)(self.member_id, message)
        except ApiError as error:
            await self._send_error(error, message)
        except Exception:
            # A bug must not cost the member the connection (Channels would close it with 1011)
            # nor anyone else anything: the message's transaction was rolled back.
            log.exception("party %s: member %s's message failed", self.party_id, self.member_id)
            await self._send_error(
                ApiError("server_error", "The server failed to handle that message.", 500), message
            )

    async def party_event(self, message):
        seq = message["seq"]
        if seq <= self.sent_seq or self.window.shut:
            return  # already sent, or to be sent from the archive when the connection drains
        if seq > self.sent_seq + 1:
            await self._send_archive_until(seq)
        else:
            await self._send_frame(seq, message["frame"])

    async def party_resync(self, message):
        await self._send_archive_until(None)
        # Also keeps this socket's presence fresh, and sends what changed unannounced (a
        # process that died took its members' sockets with it; a lost broadcast).
        online = await sync_to_async(presence.stamp)(
            self.party_id, self.member_id, self.channel_name
        )
        await self._send_presence(online)

    async def party_presence(self, message):
        if self.wants_presence:
            await self._send_presence(await sync_to_async(presence.online)(self.party_id))

    async def member_removed(self, message):
        if message["member"] == self.member_id:
            await self._send_archive_until(None)  # the member.removed event itself, first
            # Out of the room now, not once the client has answered the close.
            await self._leave_the_room()
            await self.close(code=CLOSE_NOT_MEMBER)

    async def session_ended(self, message):
        # The browser session that joined logged out: its sockets must not act for it any more.
        await self._leave_the_room()
        await self.close(code=CLOSE_SIGNED_OUT)

    async def render_progress(self, message):
        if not self.window.shut:  # live only: not archived, no seq, not worth waiting for
            await self.send(text_data=message["frame"])  # encoded once, by the worker

    async def _send_archive_until(self, last_seq):
        while True:
            frames = await _archived(self.party_id, self.sent_seq, last_seq)
            for seq, frame in frames:
                if self.window.shut:
                    return  # the rest comes when the connection drains
                await self._send_frame(seq, frame)
            if len(frames) < REPLAY_BATCH:
                return

    async def _send_frame(self, seq, frame):
        self.sent_seq = seq
        await self.send(text_data=frame)

    async def _send_presence(self, online):
        # The whole list each time: a lost or late frame is mended by the next one.
        if self.wants_presence and online != self.shown_online and not self.window.shut:
            self.shown_online = online
            await self.send_json({"type": "presence", "online": online})

    async def _send_error(self, error, message=None):
        if self.window.shut:  # a client that does not read cannot see it anyway
            return
        frame = {"type": "error", **error.as_dict()}
        # The refused message's client_id, so that a client waiting for an answer to it (to send
        # it again after a reconnect) knows this was the answer, and which message it answers.
        if client_id := _client_id(message):
            frame["client_id"] = client_id
        await self.send_json(frame)


def _query_flag(scope, name):
    """A yes-or-no query parameter: True for 1 or true, False when absent, empty, 0 or false,
    else MALFORMED (the socket is refused, not quietly opened without what it asked for)."""
    # Blank values kept: in `presence=1&presence=` the last one, empty, is the one that counts.
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    values = query.get(name)
    if not values or values[-1] in ("", "0", "false"):
        return False
    return True if values[-1] in ("1", "true") else MALFORMED


def _client_id(message):
    """A message's client_id if it is a well-formed one (never an arbitrary value echoed back)."""
    client_id = message.get("client_id") if isinstance(message, dict) else None
    return client_id if isinstance(client_id, str) and CLIENT_ID.fullmatch(client_id) else None


def _message(text):
    """The client message in a text frame, parsed and checked (core/inbound.py)."""
    if text is None:
        raise ApiError("invalid_message", "Send messages as JSON in text frames.")
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        raise ApiError("message_too_large", "Messages are at most 64 KiB.")
    return inbound.parse_json(text)


@database_sync_to_async
def _party_and_member(code, session_key):
    party = Party.objects.by_code(code).first()
    if party is None or session_key is None:
        return party, None
    return party, party.member_for_session(session_key)


@database_sync_to_async
def _archived(party_id, after, until):
    events = Party(pk=party_id).events_after(after)
    if until is not None:
        events = events.filter(seq__lte=until)
    return [(event.seq, event.as_frame()) for event in events[:REPLAY_BATCH]]


def session_group(session_key):
    """The group of every party socket one browser session opened: closed together when the
    session logs out. Hashed: a session key is a secret, and group names travel to Redis."""
    return "session-" + hashlib.sha256(session_key.encode()).hexdigest()[:32]
