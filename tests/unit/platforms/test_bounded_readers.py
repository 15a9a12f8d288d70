"""What a hostile server can make Hermes hold: IMAP answers and HTTP bodies, each read within a fixed bound.

The IMAP session runs over a socket pair against a scripted server in the same loop (no network);
HTTP bodies come from httpx.MockTransport.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.http import BodyTooLarge, PlatformHttp, fallback, header_wait, make_client, read_capped
from hermes.adapters.platforms.imap import ImapProtocolError, ImapSession, ImapTooLarge
from hermes.domain.errors import PlatformRejected
from hermes.domain.platform import Platform

from .scripted import BASES, Script

MiB = 1024 * 1024

# --- IMAP -------------------------------------------------------------------------------------------------

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ScriptedImap:
    """The server end of a socket pair: greets, answers CAPABILITY, then runs `behaviour` for the rest."""

    def __init__(self, behaviour: Behaviour, capabilities: str = "IMAP4rev1") -> None:
        self.client_sock, self._server_sock = socket.socketpair()
        self.client_sock.setblocking(False)
        self._behaviour = behaviour
        self._capabilities = capabilities
        self.written = 0
        self.cut_off_after: float | None = None
        self.task: asyncio.Task[None] | None = None

    async def _serve(self) -> None:
        reader, writer = await asyncio.open_connection(sock=self._server_sock)
        writer.write(b"* OK scripted ready\r\n")
        tag = (await reader.readline()).split(b" ")[0]
        writer.write(b"* CAPABILITY " + self._capabilities.encode() + b"\r\n" + tag + b" OK done\r\n")
        try:
            await self._behaviour(reader, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def session(self, *, timeout: float = 2.0, max_literal: int = MiB, security: str = "none") -> ImapSession:
        self.task = asyncio.create_task(self._serve())
        return await ImapSession.open(
            self.client_sock,
            server_hostname="imap.test",
            security=security,
            tls=ssl.create_default_context(),
            timeout=timeout,
            max_literal=max_literal,
        )


async def _tag(reader: asyncio.StreamReader) -> bytes:
    return (await reader.readline()).split(b" ")[0]


async def test_a_literal_announced_beyond_the_cap_ends_the_connection_before_it_is_read() -> None:
    sent = {"bytes": 0, "stopped": 0.0}

    async def bomb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _tag(reader)
        writer.write(b"* 1 FETCH (UID 1 BODY[] {1600000000}\r\n")
        chunk = b"x" * 65536
        try:
            while sent["bytes"] < 1_600_000_000:
                writer.write(chunk)
                await writer.drain()
                sent["bytes"] += len(chunk)
        finally:
            sent["stopped"] = time.monotonic()

    server = ScriptedImap(bomb)
    session = await server.session(max_literal=MiB)
    started = time.monotonic()
    with pytest.raises(ImapTooLarge) as caught:
        await session.uid_fetch([1], "(BODY.PEEK[])")
    assert caught.value.limit == MiB
    assert server.task is not None
    await asyncio.wait_for(server.task, 2)
    # The server found the connection gone at once: it could not push more than the socket buffers hold.
    assert sent["stopped"] - started < 1.0
    assert sent["bytes"] < 8 * MiB


async def test_a_literal_within_the_cap_is_read() -> None:
    message = b"Subject: hi\r\n\r\n" + b"y" * 5000

    async def honest(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tag = await _tag(reader)
        writer.write(b"* 1 FETCH (UID 4 FLAGS (\\Seen) BODY[] {%d}\r\n" % len(message) + message + b")\r\n")
        writer.write(b"* 2 FETCH (FLAGS (\\Seen))\r\n")  # someone else's flag change: dropped
        writer.write(tag + b" OK fetched\r\n")
        await reader.read()

    session = await ScriptedImap(honest).session(max_literal=len(message))
    [found] = await session.uid_fetch([4], "(UID FLAGS BODY.PEEK[])")
    assert (found.uid, found.flags, found.data) == (4, frozenset({"\\Seen"}), message)
    session.close()


async def test_many_literals_within_the_cap_still_cannot_add_up_beyond_it() -> None:
    async def many(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tag = await _tag(reader)
        for uid in range(1, 201):
            writer.write(b"* %d FETCH (UID %d BODY[] {1000}\r\n" % (uid, uid) + b"m" * 1000 + b")\r\n")
            await writer.drain()
        writer.write(tag + b" OK fetched\r\n")
        await reader.read()

    session = await ScriptedImap(many).session(max_literal=1000)
    with pytest.raises(ImapTooLarge) as caught:
        await session.uid_fetch(list(range(1, 201)), "(UID BODY.PEEK[])")
    assert caught.value.what == "the answer"


async def test_a_line_without_an_end_is_cut_off_at_the_line_cap() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _tag(reader)
        writer.write(b"* OK ")
        while True:
            writer.write(b"a" * 65536)
            await writer.drain()

    session = await ScriptedImap(endless).session()
    with pytest.raises(ImapTooLarge) as caught:
        await session.select("INBOX")
    assert caught.value.what == "a response line"


async def test_a_huge_search_answer_keeps_only_the_newest_uids() -> None:
    uids = b" ".join(str(n).encode() for n in range(1, 300_001))

    async def many(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tag = await _tag(reader)
        writer.write(b"* SEARCH ")
        # Chunks that split numbers (and the CRLF) in two.
        answer = uids + b"\r\n" + tag + b" OK done\r\n"
        for start in range(0, len(answer), 7777):
            writer.write(answer[start : start + 7777])
            await writer.drain()
        await reader.read()

    session = await ScriptedImap(many).session()
    newest, total = await session.uid_search(["ALL"], None, keep=20)
    assert newest == list(range(300_000, 299_980, -1))
    assert total == 300_000
    session.close()


async def test_a_dripping_server_runs_into_the_command_deadline() -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _tag(reader)
        writer.write(b"* 1 FETCH (UID 1 BODY[] {100}\r\n")
        while True:
            writer.write(b"z")
            await writer.drain()
            await asyncio.sleep(0.1)

    session = await ScriptedImap(drip).session(timeout=0.5)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await session.uid_fetch([1], "(BODY.PEEK[])")
    assert time.monotonic() - started < 1.0
    session.close()


async def test_plain_text_sent_before_the_tls_handshake_is_refused() -> None:
    async def inject(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tag = await _tag(reader)
        writer.write(tag + b" OK begin TLS now\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
        await reader.read()

    server = ScriptedImap(inject, capabilities="IMAP4rev1 STARTTLS")
    with pytest.raises(ImapProtocolError):
        await server.session(security="starttls")


# --- HTTP -------------------------------------------------------------------------------------------------


def _gzip_bomb(size: int) -> bytes:
    return gzip.compress(b"\0" * size, compresslevel=9)


async def _response(body: bytes, headers: dict[str, str]) -> httpx.Response:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_streamed([body]), headers=headers)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return await client.send(client.build_request("GET", "https://bomb.test/"), stream=True)


async def test_a_16_kb_gzip_chunk_that_inflates_to_16_mb_is_refused_without_being_inflated() -> None:
    bomb = _gzip_bomb(16 * MiB)
    assert len(bomb) < 20_000
    response = await _response(bomb, {"content-encoding": "gzip"})
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            await read_capped(response, MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * MiB  # the cap and one step, never the 16 MB


async def test_compressed_bodies_within_the_cap_are_decoded() -> None:
    text = b"hello " * 10_000
    for coding, body in (
        ("gzip", gzip.compress(text)),
        ("deflate", zlib.compress(text)),
        ("deflate", zlib.compress(text)[2:-4]),  # raw deflate, as some servers send it
        ("identity", text),
        ("br", text),  # not asked for: passed through as it came, still counted
    ):
        response = await _response(body, {"content-encoding": coding})
        assert await read_capped(response, len(text)) == text, coding


async def test_nested_codings_are_each_bounded() -> None:
    inner = _gzip_bomb(64 * MiB)
    response = await _response(gzip.compress(inner), {"content-encoding": "gzip, gzip"})
    with pytest.raises(BodyTooLarge):
        await read_capped(response, MiB)


async def test_codings_in_separate_headers_are_each_undone_in_order() -> None:
    text = b"hello " * 10_000
    response = await _response(zlib.compress(gzip.compress(text)), {})
    response.headers = httpx.Headers([("Content-Encoding", "gzip"), ("content-encoding", "deflate")])
    assert await read_capped(response, len(text)) == text


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    pulled: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        pulled.append(b"x" * 100)
        yield pulled[-1]

    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body())))
    response = await client.send(client.build_request("GET", "https://big.test/"), stream=True)
    response.headers = httpx.Headers([("Content-Length", "100")])
    with pytest.raises(BodyTooLarge):
        await read_capped(response, 99)
    assert not pulled


async def test_a_platform_gzip_bomb_is_a_tool_error() -> None:
    bomb = _gzip_bomb(16 * MiB)
    script = Script(
        lambda request: httpx.Response(200, content=_streamed([bomb]), headers={"content-encoding": "gzip"})
    )
    cfg = PlatformConfig(api_bases=dict(BASES), max_response_bytes=MiB)
    http = make_client(cfg, transport=httpx.MockTransport(script))
    gateway = PlatformHttp(Platform.DISCORD, http, cfg, lambda r: fallback(Platform.DISCORD, r), header_wait)
    with pytest.raises(PlatformRejected) as caught:
        await gateway.call("GET", "https://discord.test/api/v10/channels/1", headers={})
    assert caught.value.code == "response_too_large"
    assert script.requests[0].headers["accept-encoding"] == "gzip, deflate"


async def _streamed(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
