"""Outbound platform calls: the one shared HTTP client, and the call policy every gateway uses.

httpx over Hermes's own HTTP/1.1 transport (`http1.py`, httptools' parser under an asyncio
keep-alive pool): about a sixth of the CPU per request of aiohttp's client (figures in http1.py).
A platform call builds its request's header pairs once and hands them straight to that transport
(`_parts`, `Http1Transport.exchange`), past httpx's request and response objects and the URL
merging, header rebuilding, hooks and cookie handling of `build_request` and `send` that this
client never needs; under another transport (a test's MockTransport, tracing's wrapper) the same
request goes through httpx (`_request`, `_Client.dispatch`). `python -m bench.platform_call`
measures the whole call beside a bare `aiohttp.ClientSession.post`.
Neither httpx nor the transport below it keeps cookies: the client is shared by every tenant.

The call policy (`PlatformHttp.call`):

- per-attempt connect/read timeouts (the client's), and one overall deadline
  (`PlatformConfig.total_timeout`) that covers every attempt and every wait;
- responses larger than `max_response_bytes` are refused while streaming, counted
  after decompression (`read_capped`), so a small gzip bomb stays small;
- a retry only where the platform says one will work: a rate-limit reply that
  names its wait (`Retry-After`, Telegram `retry_after`, Discord's reset
  headers, X's `x-rate-limit-reset`, each module's `wait` function), and 5xx or
  connection failures of idempotent reads (GET) with exponential backoff and
  jitter. A write that failed on the server or on the wire is never repeated:
  it may have gone through;
- a wait longer than `max_retry_wait` (or past the deadline) is not waited:
  the caller gets the platform's error with `retry_after`, so an agent knows
  when to try again;
- 401 and 403 are never retried; each module words them (usually "reconnect").

Errors never carry request URLs or library messages: Telegram puts the bot token
in the path, and httpx's exceptions may quote the URL.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import re
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.cookiejar import Cookie, CookieJar
from typing import Any
from urllib.request import Request as UrllibRequest

import httpx
import msgspec
from prometheus_client import Histogram

from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.http1 import Http1Transport
from hermes.adapters.prometheus_metrics import PLATFORM_CALLS
from hermes.domain.errors import Actor, PlatformRejected, Sent
from hermes.domain.platform import Platform

DISPLAY_NAMES: dict[Platform, str] = {
    Platform.WHATSAPP: "WhatsApp",
    Platform.TELEGRAM: "Telegram",
    Platform.DISCORD: "Discord",
    Platform.TWITTER: "X",
    Platform.LINKEDIN: "LinkedIn",
    Platform.INSTAGRAM: "Instagram",
    Platform.EMAIL: "the mail server",
    Platform.OBSIDIAN: "Obsidian",
}

_encode_json = msgspec.json.Encoder().encode
_TRANSPORT_ERRORS = (httpx.HTTPError, httpx.InvalidURL, OSError)
# Backoff for retried reads: the first retry waits 0.1-0.2 s, the next 0.2-0.4 s, ...
_BACKOFF_BASE = 0.2


class _NoCookies(CookieJar):
    """A jar that never keeps anything.

    Every tenant shares one client, so a cookie a platform sets on customer A's
    call must never ride along on customer B's. It also saves the cookie bookkeeping
    httpx would otherwise do on every response.
    """

    def set_cookie(self, cookie: Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: UrllibRequest) -> None:
        return None


class _NothingToExtract(httpx.Cookies):
    """The client's cookies: always none, and a response's are not even read.

    httpx builds two urllib request/response adapters per response to hand `Set-Cookie`
    to the jar, only for `_NoCookies` to drop it: 3 % of a tool call's CPU in a profile.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _Client(httpx.AsyncClient):
    _kept = _NothingToExtract(_NoCookies())

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        return self._kept

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        return None  # nothing is ever kept (see _NoCookies)

    async def dispatch(self, request: httpx.Request) -> httpx.Response:
        """`request` straight to the transport, its body unread (`send(request, stream=True)`).

        `send` also runs auth, redirects, event hooks and cookie extraction, none of which
        this client has, and logs each request at INFO (a level production never shows):
        a tenth of a platform call's CPU. The transport is looked up per call, so tracing
        that wraps it (`trace_clients`) still sees every request.
        """
        response = await self._transport_for_url(request.url).handle_async_request(request)
        response.request = request
        return response

    def direct(self, url: httpx.URL) -> Http1Transport | None:
        """The transport for `url` when a platform call may use it without httpx's request and response
        objects (`PlatformHttp._once`): Hermes's own, unwrapped (tracing wraps it, and must see every call)."""
        transport = self._transport_for_url(url)
        if type(transport) is not Http1Transport or "handle_async_request" in vars(transport):
            return None  # another transport, or ours with its method wrapped on the instance (OpenTelemetry's way)
        return transport


_BOT_TOKEN = re.compile(r"/bot[^/\s]+")


class _RedactBotTokens(logging.Filter):
    """httpx logs request URLs (at INFO); Telegram's carry the bot token in the path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _BOT_TOKEN.sub("/bot<redacted>", str(a)) if isinstance(a, str | httpx.URL) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _BOT_TOKEN.sub("/bot<redacted>", record.msg)
        return True


_httpx_logger = logging.getLogger("httpx")
if not any(isinstance(f, _RedactBotTokens) for f in _httpx_logger.filters):
    _httpx_logger.addFilter(_RedactBotTokens())


class BodyTooLarge(Exception):
    """A response body that is, or would decompress to, more than the caller's cap."""


# Content codings that are inflated here, in bounded steps; they are also all that is asked for.
_ZLIB_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
ACCEPT_ENCODING = "gzip, deflate"
_INFLATE_STEP = 64 * 1024


class _Inflater:
    """One content coding undone with a bounded output per step; `cap` bounds its total output."""

    def __init__(self, coding: str, cap: int) -> None:
        self._wbits = _ZLIB_WBITS[coding]
        self._raw_fallback = coding == "deflate"  # some servers send raw deflate without the zlib header
        self._zlib = zlib.decompressobj(self._wbits)
        self._cap = cap
        self._out = 0

    def feed(self, data: bytes) -> list[bytes]:
        pieces: list[bytes] = []
        while data and not self._zlib.eof:
            try:
                piece = self._zlib.decompress(data, _INFLATE_STEP)
            except zlib.error as exc:
                if self._raw_fallback and self._out == 0:
                    self._raw_fallback = False
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise httpx.DecodingError("the response body is not validly compressed") from exc
            self._raw_fallback = False
            self._out += len(piece)
            if self._out > self._cap:
                raise BodyTooLarge
            tail = self._zlib.unconsumed_tail
            if not piece and len(tail) == len(data):
                break  # no progress: wait for more input
            if piece:
                pieces.append(piece)
            data = tail
        return pieces


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """A streamed response's body, decoded, refused with `BodyTooLarge` as soon as it passes `cap` bytes.

    httpx inflates a whole received chunk at once, so 16 KB of gzip could become 16 MB
    before any size check. Here the raw bytes are read and gzip/deflate undone in
    steps of at most 64 KiB, each layer's output counted: memory never exceeds `cap`
    plus one step. Codings that were not asked for pass through as they are (as httpx
    does), still counted.
    """
    coded = _coding_within(response.headers.raw, cap)
    try:
        loaded = response.content  # a body some transport already read whole (httpx's mock transport)
    except httpx.ResponseNotRead:
        pass
    else:
        if len(loaded) > cap:
            raise BodyTooLarge
        return loaded
    # The transport's stream itself: `aiter_raw` would re-chunk and book-keep around it for nothing.
    # The caller closes the response.
    stream = response.stream if isinstance(response.stream, httpx.AsyncByteStream) else response.aiter_raw()
    return await _capped(stream, coded, cap)


async def capped_body(headers: list[tuple[bytes, bytes]], stream: AsyncIterable[bytes], cap: int) -> bytes:
    """`read_capped` for a reply read straight off the transport (`Http1Transport.exchange`)."""
    return await _capped(stream, _coding_within(headers, cap), cap)


def _coding_within(headers: Iterable[tuple[bytes, bytes]], cap: int) -> bytes:
    """The reply's Content-Encoding; `BodyTooLarge` when its declared length already passes `cap`.
    One pass over the raw pairs (httpx's `get` decodes and scans per name)."""
    declared = coded = b""
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            declared = value if not declared else declared + b", " + value
        elif lowered == b"content-encoding":
            coded = value if not coded else coded + b", " + value
    if declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge
    return coded


async def _capped(stream: AsyncIterable[bytes], coded: bytes, cap: int) -> bytes:
    codings = [c.strip().lower() for c in coded.decode("latin-1").split(",")]
    layers = [_Inflater(c, cap) for c in reversed(codings) if c in _ZLIB_WBITS]
    chunks: list[bytes] = []
    size = 0
    raw = 0
    async for chunk in stream:
        raw += len(chunk)
        if raw > cap:
            raise BodyTooLarge
        pieces = [chunk]
        for layer in layers:
            pieces = [out for piece in pieces for out in layer.feed(piece)]
        for piece in pieces:
            size += len(piece)
            if size > cap:
                raise BodyTooLarge
            chunks.append(piece)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def outbound_transport(limits: httpx.Limits, verify: ssl.SSLContext | bool = True) -> httpx.AsyncBaseTransport:
    """An outbound transport: a bounded keep-alive pool, no proxy from the environment, no cookies kept."""
    return Http1Transport(limits=limits, verify=verify)


def outbound_client(
    transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout, headers: Mapping[str, str]
) -> httpx.AsyncClient:
    """A client that keeps no cookies, follows no redirects and takes no proxy from the environment."""
    return _Client(transport=transport, timeout=timeout, headers=headers, follow_redirects=False, trust_env=False)


def make_client(config: PlatformConfig, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The instance's one client; `transport` replaces the real one (tests script replies with MockTransport)."""
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=128, keepalive_expiry=30)
    return outbound_client(
        transport or outbound_transport(limits),
        httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
        {"User-Agent": config.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
    )


_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


@functools.lru_cache(maxsize=4096)
def _kept_url(url: str) -> httpx.URL:
    return httpx.URL(url)


def _request(
    http: httpx.AsyncClient, method: str, target: httpx.URL, raw: list[tuple[bytes, bytes]], body: bytes
) -> httpx.Request:
    """The request `http.build_request` would make (from `_parts`), for much less CPU.

    `build_request` merges the URL with a base URL the client does not have, merges
    cookies it never keeps, and builds the headers three times over (the body's,
    the defaults', Host and Content-Length). Here the headers are put together once,
    the caller's replacing the client's defaults of the same name, as httpx does.
    """
    request = httpx.Request(
        method, target, stream=httpx.ByteStream(body), extensions={"timeout": http.timeout.as_dict()}
    )
    # Every name and value above is ASCII (httpx refused anything else when it encoded them): saying
    # so spares the transport's first read of the headers a scan to find their encoding.
    request.headers = httpx.Headers(raw, encoding="ascii")
    request.read()  # the body is in memory: the transport sends it whole rather than as a stream
    return request


def _parts(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    headers: Mapping[str, str],
    content: bytes | None,
    params: Mapping[str, str | int] | None,
    keep_url: bool,
) -> tuple[httpx.URL, list[tuple[bytes, bytes]], bytes]:
    """The URL, the raw header pairs and the body of the request `_request` makes."""
    if params is not None:
        target = httpx.URL(url, params=params)
    else:
        target = _kept_url(url) if keep_url else httpx.URL(url)
    given = {name.lower() for name in headers}
    raw: list[tuple[bytes, bytes]] = []
    if "host" not in given:
        raw.append((b"Host", target.netloc))
    raw += [(name, value) for name, value in http.headers.raw if name.lower().decode() not in given]
    raw += [(name.encode("ascii"), value.encode("ascii")) for name, value in headers.items()]  # as httpx would
    body = b"" if content is None else content
    if (content is not None or method in _WITH_BODY) and "content-length" not in given:
        raw.append((b"Content-Length", str(len(body)).encode()))
    return target, raw, body


async def _dispatch(http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """`request` sent with its body unread, as `http.send(request, stream=True)` does."""
    if isinstance(http, _Client):
        return await http.dispatch(request)
    return await http.send(request, stream=True)


@dataclass(frozen=True, slots=True)
class Reply:
    """A platform's answer, read whole (and capped)."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        """The body as JSON values; None when it is empty or not JSON (an HTML error page, say)."""
        if not self.body:
            return None
        try:
            return msgspec.json.decode(self.body)
        except msgspec.DecodeError:
            return None


Explain = Callable[[Reply], PlatformRejected]
"""Turns a platform's error reply into a domain error saying what happened and what to do."""

Wait = Callable[[Reply], float | None]
"""Seconds the platform asked us to wait before retrying, or None when it did not say."""


def header_wait(reply: Reply) -> float | None:
    """`Retry-After` as seconds (it may also be an HTTP date)."""
    value = reply.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def reconnect(platform: Platform, what: str, code: str | None, said: str | None = None) -> PlatformRejected:
    """Stored credentials no longer work: the account owner must reconnect (the error says so)."""
    return PlatformRejected(platform.value, what, code=code, said=said, reconnect=True)


def rate_limited(
    platform: Platform, wait: float | None, what: str = "", *, code: str = "rate_limited", said: str | None = None
) -> PlatformRejected:
    name = DISPLAY_NAMES[platform]
    scope = f" ({what})" if what else ""
    return PlatformRejected(
        platform.value,
        f"{name} rate limit reached{scope}",
        code=code,
        said=said,
        retry_after=wait,
        actor=Actor.NOBODY,
        fix="" if wait is not None else "wait before trying again (the platform did not say how long)",
    )


def fallback(platform: Platform, reply: Reply, said: str | None = None, code: str | None = None) -> PlatformRejected:
    """The wording for a status a module has nothing more specific to say about; `said` is the platform's own."""
    name, p = DISPLAY_NAMES[platform], platform.value
    said = clip(said) if said else None
    status = reply.status
    code = code or f"http_{status}"
    if status == 401:
        return reconnect(platform, f"{name} rejected the credentials (expired or revoked)", code, said)
    if status == 403:
        return PlatformRejected(
            p,
            f"{name} refused the request: the account or token lacks permission for it",
            code=code,
            said=said,
            actor=Actor.OWNER,
            fix=f"grant the permission in {name}, or reconnect {platform.display_name} in Hermes",
        )
    if status == 429:
        return rate_limited(platform, header_wait(reply), code=code, said=said)
    if status >= 500:
        return PlatformRejected(p, f"{name} had a server error (HTTP {status})", code=code, said=said, retry_after=30.0)
    return PlatformRejected(p, f"{name} refused the request (HTTP {status})", code=code, said=said)


def clip(text: str, limit: int = 300) -> str:
    """A platform's own message, on one line and bounded (it goes into a tool error)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TimeoutException | TimeoutError)


def _connect_failure(exc: BaseException) -> str | None:
    """Why the connection never carried the request (so nothing was sent), or None when it may have."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting timed out"
    if not isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        return None
    cause = exc.__cause__
    if isinstance(cause, socket.gaierror):
        return "its host name cannot be resolved"
    if isinstance(cause, ssl.SSLError | ssl.CertificateError):
        return "the TLS handshake failed"
    return "the connection was refused"


def _sent(method: str, status: int | None = None) -> Sent | None:
    """A read sends nothing; a write the platform refused (4xx) did not happen; past that, it may have."""
    if method == "GET":
        return None
    return Sent.NO if status is not None and status < 500 else Sent.MAYBE


@dataclass(frozen=True, slots=True)
class PlatformHttp:
    """One platform's view of the shared client: its error wording and its rate-limit signal."""

    platform: Platform
    http: httpx.AsyncClient
    config: PlatformConfig
    explain: Explain
    wait: Wait = header_wait

    def deadline(self) -> float:
        """An overall deadline from now, for a tool that makes several calls (pass it to each)."""
        return asyncio.get_running_loop().time() + self.config.total_timeout

    async def call(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        deadline: float | None = None,
        keep_url: bool = False,
    ) -> Reply:
        """A 2xx reply, or `PlatformRejected` saying what went wrong and what to do.

        `keep_url`: `url` holds no secret and is called again and again (a send endpoint), so it is
        parsed once and kept (httpx's URL parser is a tenth of a call's CPU). Never for a URL with
        a token in it (Telegram's path carries the bot token): the cache outlives the call.
        """
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + self.config.total_timeout
        content = None if json is None else _encode_json(json)
        started = time.perf_counter()
        code = "error"  # also what an unexpected failure or a cancellation is counted as
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    reply = await self._attempts(method, url, headers, content, params, keep_url, deadline, loop)
                code = "ok"
                return reply
            except TimeoutError:
                failure = self._timeout(method)
            raise failure
        except PlatformRejected as exc:
            code = exc.code or "error"
            raise
        finally:
            _calls_metric(self.platform.value, code).observe(time.perf_counter() - started)

    async def _attempts(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes | None,
        params: Mapping[str, str | int] | None,
        keep_url: bool,
        deadline: float,
        loop: asyncio.AbstractEventLoop,
    ) -> Reply:
        idempotent = method == "GET"
        attempt = 0
        while True:
            attempt += 1
            last_try = attempt >= self.config.max_attempts
            failure: PlatformRejected | None = None
            reply: Reply | None = None
            try:
                reply = await self._once(method, url, headers, content, params, keep_url)
            except _TRANSPORT_ERRORS as exc:
                failure = self._transport_failure(method, exc)
            if reply is None:
                assert failure is not None
                pause = _backoff(attempt)
                if not idempotent or last_try or loop.time() + pause >= deadline:
                    raise failure
                await asyncio.sleep(pause)
                continue
            status = reply.status
            if status < 300:
                return reply
            if status in (401, 403):
                raise self._explained(method, reply)
            rate_limit = status == 429
            if not rate_limit and not (idempotent and status >= 500):
                raise self._explained(method, reply)
            asked = self.wait(reply)
            if rate_limit and asked is None:
                raise self._explained(method, reply)
            if rate_limit:
                assert asked is not None
                pause = asked + random.uniform(0.0, min(1.0, 0.1 * asked))  # noqa: S311 - jitter, not secrecy
            else:
                pause = max(asked or 0.0, _backoff(attempt))
            if last_try or pause > self.config.max_retry_wait or loop.time() + pause >= deadline:
                raise self._not_waiting(method, reply, asked)
            await asyncio.sleep(pause)

    async def _once(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes | None,
        params: Mapping[str, str | int] | None,
        keep_url: bool,
    ) -> Reply:
        target, raw, sent = _parts(self.http, method, url, headers, content, params, keep_url)
        transport = self.http.direct(target) if isinstance(self.http, _Client) else None
        if transport is not None:
            return await self._direct(transport, method, target, raw, sent)
        response = await _dispatch(self.http, _request(self.http, method, target, raw, sent))
        try:
            if response.status_code == 204:
                return Reply(204, response.headers, b"")
            body = await read_capped(response, self.config.max_response_bytes)
        except BodyTooLarge:
            raise self._too_large(method) from None
        finally:
            await response.aclose()
        return Reply(response.status_code, response.headers, body)

    async def _direct(
        self, transport: Http1Transport, method: str, target: httpx.URL, raw: list[tuple[bytes, bytes]], body: bytes
    ) -> Reply:
        """`_once` straight on the transport: the same request and reply, without httpx's objects around them
        (a sixth of a platform call's CPU). Raises what the transport raises under httpx."""
        status, headers, stream = await transport.exchange(method, target, raw, body, self.http.timeout.as_dict())
        try:
            data = b"" if status == 204 else await capped_body(headers, stream, self.config.max_response_bytes)
        except BodyTooLarge:
            raise self._too_large(method) from None
        finally:
            await stream.aclose()
        return Reply(status, httpx.Headers(headers), data)

    def _explained(self, method: str, reply: Reply) -> PlatformRejected:
        error = self.explain(reply)
        if error.sent is None:
            error.sent = _sent(method, reply.status)
        return error

    def _not_waiting(self, method: str, reply: Reply, asked: float | None) -> PlatformRejected:
        """The platform's own error, carrying the wait we chose not to sit through."""
        error = self._explained(method, reply)
        if error.retry_after is None and asked is not None:
            error.retry_after = asked
        return error

    def _timeout(self, method: str) -> PlatformRejected:
        name = DISPLAY_NAMES[self.platform]
        return PlatformRejected(
            self.platform.value,
            f"{name} did not answer in time",
            code="timeout",
            retry_after=30.0,
            sent=_sent(method),
        )

    def _transport_failure(self, method: str, exc: BaseException) -> PlatformRejected:
        name = DISPLAY_NAMES[self.platform]
        before = _connect_failure(exc)
        if before is not None:
            return PlatformRejected(
                self.platform.value,
                f"{name} cannot be reached right now ({before})",
                code="unreachable",
                retry_after=30.0,
                sent=None if method == "GET" else Sent.NO,
            )
        if _timed_out(exc):
            return self._timeout(method)
        return PlatformRejected(
            self.platform.value,
            f"the connection to {name} broke off before its answer arrived",
            code="unreachable",
            retry_after=30.0,
            sent=_sent(method),
        )

    def _too_large(self, method: str) -> PlatformRejected:
        name = DISPLAY_NAMES[self.platform]
        limit = self.config.max_response_bytes
        return PlatformRejected(
            self.platform.value,
            f"{name} answered with more than {limit} bytes, which Hermes refuses to read",
            code="response_too_large",
            fix="ask for fewer items",
            sent=_sent(method),
        )


@functools.lru_cache(maxsize=512)
def _calls_metric(platform: str, code: str) -> Histogram:
    """The histogram's child for one platform and result: `labels` takes a lock and a lookup on every call."""
    return PLATFORM_CALLS.labels(platform, code)


def _backoff(attempt: int) -> float:
    ceiling = _BACKOFF_BASE * 2 ** (attempt - 1)
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not secrecy


def unexpected(platform: Platform, what: str) -> PlatformRejected:
    """A 2xx reply we cannot read: the platform changed, or something in between answered."""
    name = DISPLAY_NAMES[platform]
    return PlatformRejected(
        platform.value,
        f"{name} answered {what} with a body Hermes cannot read",
        code="unexpected_response",
        sent=Sent.MAYBE,
    )
