"""HTTP/1.1 for the outbound client: httptools parses each reply, asyncio carries it, a keep-alive pool per origin.

Every platform call goes through here, so its cost is part of every tool call. Measured on this machine
for one keep-alive POST and its small JSON reply, CPU per request of the calling process
(`python -m bench.platform_call` compares the whole platform call):

- aiohttp's `ClientSession.post`: ~70 us; under httpx (httpx-aiohttp): ~110 us;
- aiosonic: ~80 us; httpx's own transport (httpcore on anyio): ~3.5x aiohttp's;
- the same exchange over an asyncio protocol with httptools' parser: ~11 us; under httpx: ~47 us.

The hard part of a client, reading a reply off the wire (the status line, headers, Content-Length and
chunked framing, keep-alive), is httptools' (llhttp, the parser of Node.js and uvicorn). What is written
here is the rest: the request's bytes, the pool, and the bounds a hostile server must not get past:

- connect, write and read timeouts (httpx's `timeout` request extension; the read timeout bounds the wait
  for the reply's head, then each wait for more of its body), on top of the caller's overall deadline;
- reply headers capped (`MAX_HEADER_BYTES`, with interim replies, chunk sizes and trailers) while they
  arrive, never parsed past the cap; the body is handed over as it arrives,
  reading paused while more than `_HIGH_WATER` bytes wait, so a caller's size cap (`read_capped`) holds;
- at most `max_connections` connections in all: past that a request waits for one (httpx's `pool` timeout),
  taking the place of an idle connection to another origin first;
- a connection is reused only after its reply was read to the end and both sides kept it alive; any other
  ending (an error, a cancelled call, a body left unread, stray bytes) closes it.

The `sni_hostname` extension names the TLS server (and certificate) when the URL holds a vetted address
rather than the host's name (network.py). No cookies, no proxies, no redirects: the client above follows none.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping

import httptools
import httpx

MAX_HEADER_BYTES = 64 * 1024
_HIGH_WATER = 256 * 1024  # reply bytes waiting to be read before the socket is no longer read
_LOW_WATER = 64 * 1024
_PER_CHUNK = 64  # what a chunk's size line may take beyond its data, counted against the header cap
_NO_BODY_STATUS = frozenset({204, 304})

Origin = tuple[str, str, int, str | None]  # scheme, host, port, TLS server name


class _Connection(asyncio.Protocol):
    """One socket, one exchange at a time: the reply's parser callbacks fill the state read by the request."""

    def __init__(self, origin: Origin, pool: Http1Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.origin = origin
        self.pool = pool
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.counted = True  # holds one of the pool's places until forgotten
        self.active = False  # an exchange is under way (bytes arriving otherwise are stray)
        self.idle_since = 0.0
        self.closed = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.until_close = False
        self.head_only = False
        self.interim = False
        self.framing = 0  # bytes of the reply that are not body
        self.body_bytes = 0
        self.chunk_count = 0
        self.error: httpx.TransportError | None = None
        self._wake: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._reading_paused = False

    # asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.active or self.complete:
            self.close()  # nothing was asked: a server writing on its own is not to be trusted with the next call
            return
        if not self.headers_done and self.framing + len(data) > MAX_HEADER_BYTES:
            # Only what the cap leaves room for goes to the parser until the headers are done.
            room = MAX_HEADER_BYTES - self.framing
            if not self._feed(data[:room]):
                return
            if not self.headers_done:
                self._fail(httpx.RemoteProtocolError(f"the reply's headers exceed {MAX_HEADER_BYTES} bytes"))
                return
            data = data[room:]
        self._feed(data)

    def _feed(self, data: bytes) -> bool:
        """`data` parsed, and everything in it that is not body counted (headers, interim replies, chunk sizes,
        trailers): past the cap (and a little per chunk), the reply is refused. Whether it may go on."""
        body_before = self.body_bytes
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols, which was not asked for"))
            return False
        except httptools.HttpParserError:
            self._fail(httpx.RemoteProtocolError("the server's reply is not valid HTTP/1.1"))
            return False
        self.framing += len(data) - (self.body_bytes - body_before)
        if self.framing > MAX_HEADER_BYTES + _PER_CHUNK * self.chunk_count and self.error is None:
            self._fail(httpx.RemoteProtocolError(f"the reply's headers exceed {MAX_HEADER_BYTES} bytes"))
            return False
        return self.error is None

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.active and not self.complete and self.error is None:
            if self.headers_done and self.until_close and exc is None:
                self.complete = True  # a body without a length ends where the connection does
                self.keep_alive = False
            elif self.headers_done:
                self.error = httpx.ReadError("the connection closed before the reply's body ended")
            else:
                self.error = httpx.RemoteProtocolError("the server closed the connection without replying")
        self._wake_reader()
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)
        self.pool.lost(self)

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    # httptools' side

    def on_message_begin(self) -> None:
        if self.complete:  # a second reply to one request: the connection is out of step, not to be reused
            self.keep_alive = False
            return
        self.headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.headers_done and not self.complete:  # after the headers: trailers, which nothing here reads
            self.headers.append((name, value))

    def on_chunk_header(self) -> None:
        self.chunk_count += 1

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        status = self.parser.get_status_code()
        if status < 200:  # an interim reply (100 Continue, 103 Early Hints): the real one follows
            self.interim = True
            return
        self.status = status
        self.headers_done = True
        framed = False
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
                framed = True
        self.keep_alive = self.parser.should_keep_alive()
        if self.head_only or status in _NO_BODY_STATUS:
            self.complete = True  # no body follows, whatever the headers say of one
            self.keep_alive = self.keep_alive and not self.head_only  # a HEAD reply's framing is not to be trusted
        else:
            self.until_close = not framed
        self._wake_reader()

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.complete:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        if not self.complete:
            self.complete = True
            self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
        self._wake_reader()

    # the request's side

    def begin(self, head_only: bool) -> None:
        self.active = True
        self.head_only = head_only
        self.status = 0
        self.headers = []
        self.headers_done = self.complete = self.until_close = self.interim = False
        self.framing = self.body_bytes = self.chunk_count = 0

    async def write(self, data: bytes, timeout: float | None) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise httpx.RemoteProtocolError("the connection closed before the request was sent")
        self.transport.write(data)
        if self._writable is not None:
            await _wait(self.loop, self._writable, timeout, httpx.WriteTimeout("sending the request timed out"))
            if self.closed:
                raise httpx.WriteError("the connection closed while the request was being sent")

    async def receive_head(self, timeout: float | None) -> None:
        while not self.headers_done:
            if self.error is not None:
                raise self.error
            await self._wait_for_bytes(timeout)

    async def next_chunk(self, timeout: float | None) -> bytes | None:
        while True:
            if self.chunks:
                chunk = self.chunks.popleft()
                self.buffered -= len(chunk)
                if self._reading_paused and self.buffered < _LOW_WATER and self.transport is not None:
                    self._reading_paused = False
                    self.transport.resume_reading()
                return chunk
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            await self._wait_for_bytes(timeout)

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.chunks and not self.closed  # an error closes it

    def finished(self) -> None:
        """The exchange is over: the connection is idle until the next one (if kept)."""
        self.active = False
        self.chunks.clear()
        self.buffered = 0

    def close(self) -> None:
        self.active = False
        self.closed = True
        if self.transport is not None:
            self.transport.close()  # connection_lost follows

    async def _wait_for_bytes(self, timeout: float | None) -> None:
        wake = self.loop.create_future()
        self._wake = wake
        await _wait(self.loop, wake, timeout, httpx.ReadTimeout("the server did not answer in time"))

    def _wake_reader(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _fail(self, error: httpx.TransportError) -> None:
        self.error = error
        self._wake_reader()
        self.close()


async def _wait(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], timeout: float | None, expired: BaseException
) -> None:
    """`future`'s outcome, or `expired` raised once `timeout` seconds passed first (a timer, not a task)."""
    if timeout is None:
        await future
        return
    timer = loop.call_later(timeout, _expire, future, expired)
    try:
        await future
    finally:
        timer.cancel()


def _expire(future: asyncio.Future[None], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class ReplyBody(httpx.AsyncByteStream):
    """A reply's body as it arrives; the connection goes back to the pool once the body was read to its end."""

    def __init__(self, connection: _Connection, timeout: float | None) -> None:
        self._connection: _Connection | None = connection
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        try:
            while (chunk := await connection.next_chunk(self._timeout)) is not None:
                yield chunk
        except BaseException:
            self._end()
            raise
        self._end()

    async def aclose(self) -> None:
        self._end()

    def _end(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.pool.release(connection)


class Http1Transport(httpx.AsyncBaseTransport):
    """httpx's transport interface over `_Connection`s: see the module's text."""

    def __init__(self, *, limits: httpx.Limits | None = None, verify: ssl.SSLContext | bool = True) -> None:
        limits = limits or httpx.Limits()
        self._ssl = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        self._max = limits.max_connections or 100
        self._max_idle = self._max if limits.max_keepalive_connections is None else limits.max_keepalive_connections
        self._expiry = 5.0 if limits.keepalive_expiry is None else limits.keepalive_expiry
        self._idle: dict[Origin, list[_Connection]] = {}
        self._idle_count = 0
        self._open = 0  # connections holding a place: opening, in use or idle
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        server_name = request.extensions.get("sni_hostname")
        if isinstance(server_name, bytes):
            server_name = server_name.decode("ascii", "replace")
        status, headers, body = await self.exchange(
            request.method,
            request.url,
            request.headers.raw,
            request.content if _in_memory(request) else request,
            request.extensions.get("timeout") or {},
            server_name=str(server_name) if server_name else None,
        )
        return httpx.Response(status, headers=headers, stream=body, extensions={"http_version": b"HTTP/1.1"})

    async def exchange(
        self,
        method: str,
        url: httpx.URL,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes | httpx.Request,
        timeouts: Mapping[str, float | None],
        *,
        server_name: str | None = None,
    ) -> tuple[int, list[tuple[bytes, bytes]], ReplyBody]:
        """One request, its body in memory or streamed from `body`'s request, and the reply's status, headers
        and body, which the caller closes (`ReplyBody.aclose`).

        httpx's transport interface (`handle_async_request`) is this with httpx's request and response
        objects around it; a platform call (`PlatformHttp`) uses it as it is."""
        head, length, chunked = _request_head(method, url, headers)
        whole = _framed(body, length, chunked) if isinstance(body, bytes) else None
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"the scheme {scheme!r} is not supported")
        origin: Origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80), server_name)
        connection = self._take(origin)
        if connection is None:
            connection = await self._connect(origin, timeouts)
        try:
            connection.begin(method == "HEAD")
            if whole is not None:
                await connection.write(head + whole, timeouts.get("write"))  # one write, one packet
            else:
                assert isinstance(body, httpx.Request)
                await connection.write(head, timeouts.get("write"))
                await _stream_body(connection, body, length, chunked, timeouts.get("write"))
            await connection.receive_head(timeouts.get("read"))
        except BaseException:
            connection.close()
            self.release(connection)
            raise
        return connection.status, connection.headers, ReplyBody(connection, timeouts.get("read"))

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            connection = idle[-1]
            if not connection.closed and now - connection.idle_since < self._expiry:
                idle.pop()
                self._idle_count -= 1
                return connection
            self._drop_idle(connection)
        return None

    async def _connect(self, origin: Origin, timeouts: Mapping[str, float | None]) -> _Connection:
        if self._closed:
            raise httpx.ConnectError("the client was closed")
        loop = asyncio.get_running_loop()
        while self._open >= self._max:
            if self._idle_count:
                self._evict_oldest()
                continue
            waiter = loop.create_future()
            self._waiting.append(waiter)
            try:
                await _wait(loop, waiter, timeouts.get("pool"), httpx.PoolTimeout("no connection came free in time"))
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._wake_one()  # woken, then cancelled before it ran: the place goes to the next in line
                raise
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
            if self._closed:
                raise httpx.ConnectError("the client was closed")
            taken = self._take(origin)
            if taken is not None:
                return taken
        self._open += 1
        scheme, host, port, server_name = origin
        connection = _Connection(origin, self, loop)
        tls = self._ssl if scheme == "https" else None
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                await loop.create_connection(
                    lambda: connection, host, port, ssl=tls, server_hostname=(server_name or host) if tls else None
                )
        except TimeoutError as exc:
            self._forget(connection)
            connection.close()
            raise httpx.ConnectTimeout("connecting timed out") from exc
        except (OSError, ValueError) as exc:  # refused, unreachable, a name that does not resolve, a TLS failure
            self._forget(connection)
            raise httpx.ConnectError("the connection could not be made") from exc
        except BaseException:
            self._forget(connection)
            connection.close()
            raise
        return connection

    def release(self, connection: _Connection) -> None:
        """The exchange on `connection` ended: keep it for the next request to its origin, or close it."""
        reusable = connection.reusable
        connection.finished()
        if not reusable or self._closed or self._idle_count >= self._max_idle:
            connection.close()
            self._forget(connection)
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)
        self._idle_count += 1
        if self._sweep is None:
            self._sweep = connection.loop.call_later(self._expiry, self._sweep_expired)
        self._wake_one()

    def lost(self, connection: _Connection) -> None:
        """The socket closed (either side): an idle connection leaves the pool."""
        idle = self._idle.get(connection.origin)
        if idle and connection in idle and not connection.active:
            self._drop_idle(connection)

    def _drop_idle(self, connection: _Connection) -> None:
        """An idle connection out of the pool, and closed."""
        self._idle[connection.origin].remove(connection)
        self._idle_count -= 1
        self._forget(connection)
        connection.close()

    def _forget(self, connection: _Connection) -> None:
        if connection.counted:
            connection.counted = False
            self._open -= 1
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _evict_oldest(self) -> None:
        oldest: _Connection | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest.idle_since):
                oldest = idle[0]
        if oldest is not None:
            self._drop_idle(oldest)

    def _sweep_expired(self) -> None:
        self._sweep = None
        loop = asyncio.get_running_loop()
        cutoff = time.monotonic() - self._expiry
        for origin, idle in list(self._idle.items()):
            for connection in [c for c in idle if c.idle_since <= cutoff]:
                self._drop_idle(connection)
            if not idle:
                del self._idle[origin]
        if self._idle_count:
            self._sweep = loop.call_later(self._expiry, self._sweep_expired)

    async def aclose(self) -> None:
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for idle in list(self._idle.values()):
            for connection in list(idle):
                self._drop_idle(connection)
        self._idle.clear()
        while self._waiting:  # each wakes to find the client closed
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)


def _in_memory(request: httpx.Request) -> bool:
    """httpx reads a body it was given as bytes, text, JSON or a form when it builds the request."""
    return hasattr(request, "_content")


def _request_head(
    method: str, url: httpx.URL, headers: Iterable[tuple[bytes, bytes]]
) -> tuple[bytes, int | None, bool]:
    """The request line and headers, the body's declared length and whether it is sent chunked.

    A CR, LF or NUL in any of them would let a value smuggle a header (or a second request) onto the wire:
    refused, counted once over the whole head."""
    lines = [b"%s %s HTTP/1.1" % (method.encode("ascii"), url.raw_path or b"/")]
    length: int | None = None
    chunked = False
    for name, value in headers:
        lines.append(b"%s: %s" % (name, value))
        lowered = name.lower()
        if lowered == b"content-length":
            if not value.isdigit() or (length is not None and int(value) != length):
                raise httpx.LocalProtocolError("the request's Content-Length is not one number")
            length = int(value)
        elif lowered == b"transfer-encoding":
            chunked = True
            if value.lower() != b"chunked":
                raise httpx.LocalProtocolError("the request's Transfer-Encoding is not chunked")
    if chunked and length is not None:
        raise httpx.LocalProtocolError("the request declares both a Content-Length and chunked framing")
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    count = len(lines) + 1
    if head.count(b"\n") != count or head.count(b"\r") != count or b"\x00" in head:
        raise httpx.LocalProtocolError("a request header holds a line break or a NUL")
    return head, length, chunked


def _framed(body: bytes, length: int | None, chunked: bool) -> bytes:
    """An in-memory body as its headers frame it; a body they do not frame is refused, never sent as it is
    (bytes past the declared end would reach the server as a request of their own)."""
    if chunked:
        return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    if len(body) != (length or 0):
        raise httpx.LocalProtocolError("the request's body does not match its Content-Length")
    return body


async def _stream_body(
    connection: _Connection, request: httpx.Request, length: int | None, chunked: bool, timeout: float | None
) -> None:
    """A streamed body, chunk-encoded or held to its declared length."""
    sent = 0
    async for part in request.stream:  # type: ignore[union-attr]
        if not part:
            continue
        sent += len(part)
        if chunked:
            await connection.write(b"%x\r\n%s\r\n" % (len(part), part), timeout)
            continue
        if sent > (length or 0):
            raise httpx.LocalProtocolError("the request's body is longer than its Content-Length")
        await connection.write(part, timeout)
    if chunked:
        await connection.write(b"0\r\n\r\n", timeout)
    elif sent != (length or 0):
        raise httpx.LocalProtocolError("the request's body is shorter than its Content-Length")
