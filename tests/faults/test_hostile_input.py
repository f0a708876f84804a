"""Oversized and malformed input against a real Daphne process over loopback (issue 7, item 10):
WebSocket messages over PartyHub's and Daphne's limits, requests that try to smuggle a second
request past the first, uploads over the limit or with a lying Content-Length. Each is refused,
nothing is half-applied, and the server's memory stays flat while it refuses them."""

import asyncio
import json
import socket
from pathlib import Path

import pytest
import websockets
from channels.db import database_sync_to_async

from partyhub.models import Upload

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

MiB = 1024 * 1024
# What a process may grow by while it refuses the test's hundreds of megabytes: allocator slack,
# not the input (each case sends at least 100 MiB).
FLAT = 40 * MiB


def rss(pid):
    """Resident memory of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def member_socket(port, party, person):
    return await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/parties/{party.code}/?since={party.last_seq}",
        additional_headers={
            "Origin": f"http://127.0.0.1:{port}",
            "Cookie": f"sessionid={person.session_key}",
        },
        max_size=None,
    )


async def next_frame(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout=30))


async def test_oversized_websocket_messages_are_refused_and_memory_stays_flat(daphne, party, host):
    # The connection's budget would refuse most of these as a flood (and stop reading them);
    # lifted here, so that each one reaches the size check. The flood test is below.
    lifted = ("BYTES_PER_SECOND", "BYTE_BURST", "MESSAGES_PER_SECOND", "MESSAGE_BURST")
    port, server = daphne(
        with_process=True, env={f"PARTYHUB_WS_{name}": str(2**40) for name in lifted}
    )
    ws = await member_socket(port, party, host)

    # Over PartyHub's 64 KiB: an error frame, and the socket goes on.
    await ws.send("x" * (64 * 1024 + 1))
    assert (await next_frame(ws))["code"] == "message_too_large"
    before = rss(server.pid)
    for _ in range(100):  # 100 MiB, each just under Daphne's own 1 MiB cap
        await ws.send(json.dumps({"type": "association.add", "text": "y" * (MiB - 100)}))
        assert (await next_frame(ws))["code"] == "message_too_large"
    assert rss(server.pid) - before < FLAT
    await ws.send(json.dumps({"type": "association.add", "text": "rain"}))
    assert (await next_frame(ws))["type"] == "association.added"

    await ws.send("z" * (2 * MiB))
    # Over Daphne's 1 MiB: Daphne (autobahn) drops the connection.
    with pytest.raises(websockets.ConnectionClosed):
        await next_frame(ws)
    assert await database_sync_to_async(party.associations.count)() == 1


def exchange(port, raw, read_for=5.0):
    """Sends raw bytes on one connection and returns all the server answers until it closes
    the connection (or `read_for` seconds of silence). The client keeps its side open: Twisted
    drops a request whose client half-closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_for) as sock:
        sock.sendall(raw)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def statuses(answer):
    return [line.split()[1] for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.")]


TOKEN = "t" * 32  # a CSRF secret: the same in the cookie and the header, as a browser sends it
SMUGGLED = b"GET /api/models HTTP/1.1\r\nHost: x\r\n\r\n"  # answered 200 if it got through


def upload_request(port, person, party, data, length=None):
    """A browser's upload of `data` as the party's image, whole and valid unless `length` lies."""
    boundary = "hostile-input-test"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /api/parties/{party.code}/uploads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Origin: http://127.0.0.1:{port}\r\nX-CSRFToken: {TOKEN}\r\n"
        f"Cookie: sessionid={person.session_key}; csrftoken={TOKEN}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + body


def png(size=(8, 8)):
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, "red").save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "case", ["length and chunked", "two lengths", "chunked with a bad size", "folded length"]
)
def test_requests_that_could_smuggle_another_are_refused(daphne, case):
    port = daphne()
    if case == "length and chunked":
        # A proxy going by Content-Length would pass the smuggled request on as this one's body.
        raw = b"POST /api/models HTTP/1.1\r\nHost: x\r\n"
        raw += f"Content-Length: {len(SMUGGLED) + 5}\r\n".encode()
        raw += b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED
    elif case == "two lengths":
        raw = b"POST /api/models HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        raw += f"Content-Length: {len(SMUGGLED)}\r\n\r\n".encode() + SMUGGLED
    elif case == "chunked with a bad size":
        raw = b"POST /api/models HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        raw += b"+5\r\nhello\r\n0\r\n\r\n" + SMUGGLED
    else:
        raw = b"POST /api/models HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        raw += f" {len(SMUGGLED)}\r\n\r\n".encode() + SMUGGLED
    answer = exchange(port, raw)
    assert statuses(answer) == [b"400"], answer[:300]  # and no 200 for the smuggled one


@pytest.mark.slow
def test_an_upload_over_the_limit_is_refused_and_memory_stays_flat(daphne, party, host):
    port, server = daphne(with_process=True)
    assert statuses(exchange(port, upload_request(port, host, party, png()))) == [b"201"]
    oversized = upload_request(port, host, party, png() + b"\0" * (10 * MiB))
    sizes = []
    for _ in range(20):  # 200 MiB in all
        answer = exchange(port, oversized, read_for=30)
        assert statuses(answer) == [b"400"] and b"upload_too_large" in answer, answer[:300]
        sizes.append(rss(server.pid))
    # Each one passes through several buffers (Daphne's, Django's, the parser's), so the first
    # few raise the high-water mark; after that it must not climb. A leak of even one copy of
    # each upload would add 100 MiB over the last ten.
    assert max(sizes[10:]) - max(sizes[:10]) < FLAT, [size // MiB for size in sizes]
    assert Upload.objects.count() == 1  # the valid one


def test_a_lying_content_length_stores_nothing(daphne, party, host):
    port = daphne()
    request = upload_request(port, host, party, png())
    head, body = request.split(b"\r\n\r\n", 1)
    # Shorter than the body: the upload is cut short (the multipart parser refuses it) and the
    # rest, read as a second request, is not HTTP.
    short = upload_request(port, host, party, png(), length=len(body) - 40)
    assert statuses(exchange(port, short + b"\0" * MiB))[0] == b"400"
    # Longer than the body, then the client stops: no request is ever handed to Django.
    long = upload_request(port, host, party, png(), length=len(body) + 10 * MiB)
    assert statuses(exchange(port, long, read_for=3)) in ([], [b"400"])
    assert not Upload.objects.exists()


async def flood(ws, until):
    """Sends valid 60 KiB messages until the loop's time `until`; returns how many the socket
    took (the server stopped reading when a send no longer completes)."""
    sent = 0
    while (left := until - asyncio.get_running_loop().time()) > 0:
        padding = " " * (60 * 1024)
        message = f'{{"type": "association.add",{padding}"text": "flood {sent}"}}'
        try:
            await asyncio.wait_for(ws.send(message), timeout=left)
        except TimeoutError:
            break  # the rest waits in this client's buffers
        sent += 1
    return sent


async def test_a_member_flooding_the_socket_is_held_to_its_budget_and_others_go_on(
    daphne, party, host, guest
):
    """Issue 16, item 5: one member sends valid 60 KiB messages as fast as the socket takes
    them, reading nothing, while someone in another party goes on adding words. The server
    stops reading the flooder past its budget (what it sends waits in its own buffers), applies
    no more than the budget allows, stays flat in memory, and answers the other party's member
    every time. bench/inbound_flood.py measures the same with and without the limits."""
    from partyhub.models import Party

    port, server = daphne(with_process=True)
    other, _ = await database_sync_to_async(Party.start)(
        topic="quiet", session_key=guest.session_key, host_name="Quinn"
    )
    flooder = await member_socket(port, party, host)
    quiet = await member_socket(port, other, guest)
    before = rss(server.pid)
    seconds = 5
    start = asyncio.get_running_loop().time()
    until = start + seconds

    async def go_on():
        answered = 0
        while asyncio.get_running_loop().time() < until:
            word = f"quiet {answered}"
            await quiet.send(json.dumps({"type": "association.add", "text": word}))
            while (frame := await next_frame(quiet)).get("association", {}).get("text") != word:
                assert frame["type"] != "error", frame
            answered += 1
            await asyncio.sleep(0.2)
        return answered

    sent, answered = await asyncio.gather(flood(flooder, until), go_on())
    grown = rss(server.pid) - before
    codes = []
    while True:  # what the flooder was told, in the order it was told
        try:
            frame = json.loads(await asyncio.wait_for(flooder.recv(), timeout=2))
        except TimeoutError:
            break
        if frame["type"] == "error":
            codes.append(frame["code"])
    applied = await database_sync_to_async(party.associations.count)()
    elapsed = asyncio.get_running_loop().time() - start  # the server reads on after the flood

    assert answered >= 10  # every word of the other party's member came back, none refused
    assert "rate_limited" in codes and set(codes) == {"rate_limited"}
    # The byte budget: a 256 KiB burst and 64 KiB a second, of 60 KiB messages.
    assert applied <= 4 + elapsed * 64 / 60 + 1, (applied, sent, elapsed)
    assert sent < 1000, sent  # far less than the socket would take if it were read
    assert grown < FLAT, grown // MiB
    await flooder.close()
    await quiet.close()


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("multipart/form-data", b"no boundary at all"),
        ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name="),
        ("application/x-www-form-urlencoded", b"%%%=&&&=%ZZ"),
    ],
)
def test_bodies_no_parser_can_read_get_json_from_the_real_server(
    daphne, party, host, content_type, body
):
    """Through Daphne, as a client sends them: Twisted used to answer a multipart body it could
    not parse with a bare 400 before Django (and PartyHub's JSON errors) saw it."""
    port = daphne()
    head = (
        f"POST /api/parties/{party.code}/uploads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Origin: http://127.0.0.1:{port}\r\nX-CSRFToken: {TOKEN}\r\n"
        f"Cookie: sessionid={host.session_key}; csrftoken={TOKEN}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    answer = exchange(port, head + body)
    assert statuses(answer) == [b"400"], answer[:300]
    headers, _, content = answer.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in headers
    assert b'"code": "' in content
    assert not Upload.objects.exists()


async def test_a_viewer_flooding_a_stream_socket_is_not_read_past_its_budget(daphne):
    """Anyone may watch a stream, and a viewer sends nothing the server reads; what it sends
    anyway counts against the same budget, so a flood is held in its own buffers."""
    from streams.models import Stream

    await database_sync_to_async(Stream.objects.create)(slug="rings", title="R", topic="rings")
    port = daphne()
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/streams/rings/",
        additional_headers={"Origin": f"http://127.0.0.1:{port}"},
    )
    assert (await next_frame(ws))["type"] == "stream.viewers"
    sent = await flood(ws, asyncio.get_running_loop().time() + 3)
    # A 256 KiB burst and 64 KiB a second, of 60 KiB frames, plus what the kernel's buffers
    # take before the client's sends stop completing: not the thousands it would send if read.
    assert sent < 200, sent
    await ws.close()
