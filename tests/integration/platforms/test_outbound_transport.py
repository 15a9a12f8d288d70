"""The outbound HTTP/1.1 transport against a scripted server on loopback: framing, reuse, and every bound a
hostile server must not get past (header size, body cap while streaming, stalls, the pool's limit)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.http import BodyTooLarge, PlatformHttp, fallback, make_client, read_capped
from hermes.adapters.platforms.http1 import MAX_HEADER_BYTES, Http1Transport
from hermes.domain.errors import PlatformRejected
from hermes.domain.platform import Platform

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """Runs `handler` for each connection; counts connections and keeps every request head it read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        """One request's head (kept in `heads`) and its Content-Length body (kept in `bodies`)."""
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        self.bodies.append(body)
        return head


def reply(body: bytes = b'{"ok":true}', *, status: int = 200, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status,
        len(body),
        extra,
        body,
    )


def keep_answering(
    server_reply: bytes, *, after: asyncio.Event | None = None, once: bool = False
) -> Callable[[Server], Handler]:
    """Each request on a connection answered with `server_reply` (only the first with `once`), once `after` is set."""

    def handler_for(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.read_request(reader)
                if after is not None:
                    await after.wait()
                writer.write(server_reply)
                await writer.drain()
                if once:
                    return

        return handle

    return handler_for


async def serving(make: Callable[[Server], Handler]) -> Server:
    server = Server(lambda r, w: asyncio.sleep(0))
    server.handler = make(server)
    return await server.__aenter__()


def client(**kwargs: object) -> httpx.AsyncClient:
    limits = kwargs.pop("limits", None)
    return httpx.AsyncClient(transport=Http1Transport(limits=limits), **kwargs)  # type: ignore[arg-type]


async def test_a_kept_alive_connection_carries_the_next_requests_and_their_bodies() -> None:
    server = await serving(keep_answering(reply()))
    try:
        async with client() as http:
            for n in range(3):
                answer = await http.post(server.url + "/v1/send?x=1", json={"n": n})
                assert answer.status_code == 200
                assert answer.json() == {"ok": True}
        assert server.connections == 1
        assert server.heads[0].startswith(b"POST /v1/send?x=1 HTTP/1.1\r\n")
        assert b"\r\nHost: 127.0.0.1:" in server.heads[0]
        assert server.bodies == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    finally:
        await server.__aexit__()


async def test_a_chunked_reply_is_read_whole_and_the_connection_reused() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    server = await serving(keep_answering(chunked))
    try:
        async with client() as http:
            assert (await http.get(server.url)).text == "hello world"
            assert (await http.get(server.url)).text == "hello world"
        assert server.connections == 1
    finally:
        await server.__aexit__()


async def test_a_reply_without_a_length_ends_with_its_connection() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end")
        await writer.drain()
        writer.close()

    async with Server(handle) as server, client() as http:
        assert (await http.get(server.url)).text == "to the end"
        assert (await http.get(server.url)).text == "to the end"
        assert server.connections == 2  # a body that ends at close leaves nothing to reuse


async def test_an_interim_reply_is_skipped_and_the_final_one_returned() -> None:
    server = await serving(keep_answering(b"HTTP/1.1 100 Continue\r\n\r\n" + reply(b"done")))
    try:
        async with client() as http:
            assert (await http.post(server.url, content=b"x")).text == "done"
            assert (await http.post(server.url, content=b"y")).text == "done"
    finally:
        await server.__aexit__()


async def test_endless_headers_are_refused_at_the_cap() -> None:
    sent = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for n in range(100_000):
            line = b"X-Filler-%d: %s\r\n" % (n, b"a" * 1000)
            writer.write(line)
            sent += len(line)
            await writer.drain()

    async with Server(handle) as server, client() as http:
        with pytest.raises(httpx.RemoteProtocolError, match="headers exceed"):
            await http.get(server.url)
    assert sent < 100 * MAX_HEADER_BYTES  # the client stopped reading long before the server ran out


async def test_an_endless_body_is_cut_at_the_callers_cap_while_it_streams() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n%s\r\n" % (64 * 1024, b"z" * 64 * 1024)
        while True:
            writer.write(piece)
            await writer.drain()

    async with Server(handle) as server, client() as http:
        request = http.build_request("GET", server.url)
        response = await http.send(request, stream=True)
        with pytest.raises(BodyTooLarge):
            await read_capped(response, 1024 * 1024)
        await response.aclose()
        # The connection with the unread rest is closed, not handed to the next request.
        await asyncio.sleep(0.05)
        assert server.open_now == 0


async def test_a_server_that_stalls_is_given_up_on_after_the_read_timeout() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(30)

    async with Server(handle) as server, client(timeout=httpx.Timeout(5, read=0.2)) as http:
        started = asyncio.get_running_loop().time()
        with pytest.raises(httpx.ReadTimeout):
            await http.get(server.url)
        assert asyncio.get_running_loop().time() - started < 2


async def test_a_server_that_drips_its_body_is_bounded_by_each_wait() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nab")
        await writer.drain()
        await asyncio.sleep(30)

    async with Server(handle) as server, client(timeout=httpx.Timeout(5, read=0.2)) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(server.url)


async def test_connections_never_exceed_the_pool_and_a_full_pool_times_out() -> None:
    release = asyncio.Event()

    server = await serving(keep_answering(reply(), after=release))
    try:
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
        async with client(limits=limits, timeout=httpx.Timeout(5, pool=0.2)) as http:
            first = [asyncio.create_task(http.get(server.url)) for _ in range(2)]
            await asyncio.sleep(0.1)
            with pytest.raises(httpx.PoolTimeout):
                await http.get(server.url)
            waiting = asyncio.create_task(http.get(server.url))  # waits for a place, then gets one
            await asyncio.sleep(0.05)
            release.set()
            answers = await asyncio.gather(*first, waiting)
            assert [a.status_code for a in answers] == [200, 200, 200]
        assert server.most_open <= 2
    finally:
        await server.__aexit__()


async def test_an_idle_connection_makes_room_for_another_origin() -> None:
    one = await serving(keep_answering(reply(b"one")))
    two = await serving(keep_answering(reply(b"two")))
    try:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with client(limits=limits, timeout=httpx.Timeout(5, pool=0.5)) as http:
            assert (await http.get(one.url)).text == "one"
            assert (await http.get(two.url)).text == "two"
            assert (await http.get(one.url)).text == "one"
        assert one.connections == 2
    finally:
        await one.__aexit__()
        await two.__aexit__()


async def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    server = await serving(keep_answering(reply()))
    try:
        async with client() as http:
            with pytest.raises(httpx.LocalProtocolError):
                await http.get(server.url, headers={"X-Name": "a\r\nX-Injected: yes"})
            assert (await http.get(server.url)).status_code == 200
        assert all(b"X-Injected" not in head for head in server.heads)
    finally:
        await server.__aexit__()


async def test_bytes_the_server_sends_past_its_reply_keep_the_connection_from_reuse() -> None:
    server = await serving(keep_answering(reply(b"first") + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"))
    try:
        async with client() as http:
            assert (await http.get(server.url)).text == "first"
            await asyncio.sleep(0.05)
            assert (await http.get(server.url)).text == "first"  # not "stray"
        assert server.connections == 2
    finally:
        await server.__aexit__()


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply())  # says keep-alive, then closes anyway once idle
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    async with Server(handle) as server, client() as http:
        assert (await http.post(server.url, content=b"a")).status_code == 200
        await asyncio.sleep(0.2)
        assert (await http.post(server.url, content=b"b")).status_code == 200
        assert server.connections == 2


async def test_a_server_that_closes_without_replying_is_a_protocol_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async with Server(handle) as server, client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(server.url, content=b"a")


async def test_garbage_instead_of_http_is_a_protocol_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with Server(handle) as server, client() as http:
        with pytest.raises(httpx.RemoteProtocolError, match="not valid HTTP"):
            await http.get(server.url)


async def test_a_refused_connection_is_a_connect_error() -> None:
    server = await serving(keep_answering(reply()))
    url = server.url
    await server.__aexit__()
    await asyncio.sleep(0.05)
    async with client() as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get(url)
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


async def test_a_streamed_request_body_goes_out_chunked() -> None:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        received.append(head)
        received.append(await reader.readuntil(b"0\r\n\r\n"))
        writer.write(reply())
        await writer.drain()

    async def parts() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    async with Server(handle) as server, client() as http:
        assert (await http.post(server.url, content=parts())).status_code == 200
    assert b"transfer-encoding: chunked" in received[0].lower()
    assert received[1] == b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"


async def test_a_head_reply_has_no_body_even_when_it_names_a_length() -> None:
    server = await serving(keep_answering(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"))
    try:
        async with client(timeout=httpx.Timeout(2)) as http:
            answer = await http.head(server.url)
            assert answer.status_code == 200
            assert answer.content == b""
            assert (await http.head(server.url)).status_code == 200
    finally:
        await server.__aexit__()


async def test_a_cancelled_call_leaves_no_connection_behind_for_the_next() -> None:
    gate = asyncio.Event()

    server = await serving(keep_answering(reply(), after=gate))
    try:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with client(limits=limits, timeout=httpx.Timeout(5, pool=1)) as http:
            call = asyncio.create_task(http.get(server.url))
            await asyncio.sleep(0.05)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            gate.set()
            assert (await http.get(server.url)).status_code == 200  # the pool's one place came back
        assert server.connections == 2  # the cancelled call's connection, its reply unread, was not reused
    finally:
        await server.__aexit__()


async def test_endless_trailers_after_a_chunked_body_are_refused_at_the_cap() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n")
        for n in range(100_000):
            writer.write(b"X-T%d: %s\r\n" % (n, b"a" * 1000))
            await writer.drain()

    async with Server(handle) as server, client() as http:
        with pytest.raises(httpx.RemoteProtocolError, match="headers exceed"):
            await http.get(server.url)


async def test_headers_that_cross_the_cap_within_one_read_are_refused() -> None:
    headers = b"".join(b"X-H%d: v\r\n" % n for n in range(MAX_HEADER_BYTES // 8))
    assert MAX_HEADER_BYTES < len(headers) < 2 * MAX_HEADER_BYTES
    server = await serving(keep_answering(b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 0\r\n\r\n"))
    try:
        async with client() as http:
            with pytest.raises(httpx.RemoteProtocolError, match="headers exceed"):
                await http.get(server.url)
    finally:
        await server.__aexit__()


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"Content-Length": "3"}, b"abcGET /admin HTTP/1.1\r\nHost: x\r\n\r\n"),
        ({"Content-Length": "30"}, b"short"),
    ],
)
async def test_a_body_that_does_not_match_its_declared_length_is_never_sent(
    headers: dict[str, str], content: bytes
) -> None:
    server = await serving(keep_answering(reply()))
    try:
        async with client() as http:
            with pytest.raises(httpx.LocalProtocolError):
                await http.post(server.url, content=content, headers=headers)
            assert (await http.get(server.url)).status_code == 200
        assert [head.split(b" ", 2)[:2] for head in server.heads] == [[b"GET", b"/"]]
    finally:
        await server.__aexit__()


async def test_a_place_a_cancelled_waiter_was_given_goes_to_the_next() -> None:
    gate = asyncio.Event()

    server = await serving(keep_answering(reply(extra=b"Connection: close\r\n"), after=gate, once=True))
    try:
        transport = Http1Transport(limits=httpx.Limits(max_connections=1))
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5, pool=2)) as http:
            holder = asyncio.create_task(http.get(server.url))
            await asyncio.sleep(0.05)
            first = asyncio.create_task(http.get(server.url))
            await asyncio.sleep(0.01)
            second = asyncio.create_task(http.get(server.url))
            await asyncio.sleep(0.01)
            # The first waiter's deadline strikes in the very loop turn the freed place is handed to it.
            wake_one = transport._wake_one

            def woken_then_cancelled() -> None:
                wake_one()
                first.cancel()
                transport._wake_one = wake_one  # type: ignore[method-assign]

            transport._wake_one = woken_then_cancelled  # type: ignore[method-assign]
            gate.set()
            assert (await holder).status_code == 200
            assert (await asyncio.wait_for(second, 1.5)).status_code == 200
            assert first.cancelled()
    finally:
        await server.__aexit__()


async def test_closing_the_client_ends_calls_waiting_for_a_place() -> None:
    gate = asyncio.Event()

    server = await serving(keep_answering(reply(), after=gate, once=True))
    try:
        transport = Http1Transport(limits=httpx.Limits(max_connections=1))
        http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5, pool=3))
        holder = asyncio.create_task(http.get(server.url))
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(http.get(server.url))
        await asyncio.sleep(0.05)
        await http.aclose()
        with pytest.raises(httpx.ConnectError):
            await asyncio.wait_for(waiting, 1)
        gate.set()
        await holder
        assert server.connections == 1
    finally:
        await server.__aexit__()


@contextlib.asynccontextmanager
async def platform_calls(server_reply: bytes, cap: int = 64 * 1024) -> AsyncIterator[tuple[Server, PlatformHttp]]:
    """A server answering every request with `server_reply`, and a platform's calls on the shared client."""
    config = PlatformConfig(api_bases={}, max_response_bytes=cap, total_timeout=5.0)
    gateway = PlatformHttp(
        Platform.DISCORD, make_client(config), config, lambda reply: fallback(Platform.DISCORD, reply)
    )
    server = await serving(keep_answering(server_reply))
    try:
        yield server, gateway
    finally:
        await gateway.http.aclose()
        await server.__aexit__()


async def test_a_platform_call_reads_a_compressed_reply_straight_off_the_transport() -> None:
    packed = gzip.compress(b'{"id":"42","ok":true}')
    async with platform_calls(reply(packed, extra=b"Content-Encoding: gzip\r\n")) as (server, gateway):
        for _ in range(2):
            answer = await gateway.call("POST", server.url + "/api/send", headers={"X-Key": "k"}, json={"a": 1})
            assert answer.status == 200
            assert answer.json() == {"id": "42", "ok": True}
            assert answer.headers["content-encoding"] == "gzip"
        assert server.connections == 1
        assert server.bodies == [b'{"a":1}', b'{"a":1}']
        assert b"\r\nx-key: k\r\n" in server.heads[0].lower()


async def test_a_platform_call_refuses_a_reply_that_inflates_past_its_cap() -> None:
    bomb = gzip.compress(b"{" + b" " * (8 * 1024 * 1024) + b"}")
    async with platform_calls(reply(bomb, extra=b"Content-Encoding: gzip\r\n"), cap=64 * 1024) as (server, gateway):
        for _ in range(2):
            with pytest.raises(PlatformRejected) as refused:
                await gateway.call("GET", server.url + "/api/list", headers={})
            assert refused.value.code == "response_too_large"
        assert server.connections == 1  # its few compressed bytes were all read: the connection stays clean


async def test_a_platform_call_words_a_refusal_and_an_empty_reply() -> None:
    async with platform_calls(b"HTTP/1.1 204 No Content\r\n\r\n") as (server, gateway):
        answer = await gateway.call("DELETE", server.url + "/api/item/1", headers={})
        assert (answer.status, answer.body) == (204, b"")
    async with platform_calls(reply(b'{"message":"Missing Permissions"}', status=403)) as (server, gateway):
        with pytest.raises(PlatformRejected) as refused:
            await gateway.call("POST", server.url + "/api/send", headers={}, json={})
        assert refused.value.code == "http_403"


async def test_a_platform_call_goes_through_a_wrapper_put_on_the_transport() -> None:
    # OpenTelemetry's httpx instrumentation wraps the client's transport method on the instance.
    async with platform_calls(reply()) as (server, gateway):
        seen: list[str] = []
        transport = gateway.http._transport  # type: ignore[attr-defined]
        unwrapped = transport.handle_async_request

        async def traced(request: httpx.Request) -> httpx.Response:
            seen.append(str(request.url))
            return await unwrapped(request)

        transport.handle_async_request = traced
        answer = await gateway.call("POST", server.url + "/api/send", headers={}, json={"a": 1})
        assert answer.json() == {"ok": True}
        assert seen == [server.url + "/api/send"]


async def test_a_platform_call_puts_on_the_wire_what_httpx_would_send() -> None:
    url_path = "/api/v10/channels/1/messages?after=2"
    headers = {"Authorization": "Bot t0ken", "Content-Type": "application/json"}
    async with platform_calls(reply()) as (server, gateway):
        await gateway.call("POST", server.url + url_path, headers=headers, json={"content": "hi"})
        expected = gateway.http.build_request(
            "POST", server.url + url_path, headers=headers, content=b'{"content":"hi"}'
        )
        await (await gateway.http.send(expected)).aread()
    direct, through_httpx = ([line.lower() for line in head.split(b"\r\n")] for head in server.heads)
    assert direct[0] == through_httpx[0] == b"post /api/v10/channels/1/messages?after=2 http/1.1"
    assert sorted(direct) == sorted(through_httpx)
    assert server.bodies == [b'{"content":"hi"}', b'{"content":"hi"}']
