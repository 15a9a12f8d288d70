"""Shared machinery of the fake platform servers.

Every fake is a :class:`FakeServer` subclass: an ASGI application that records each request it receives
(:attr:`FakeServer.requests`), can be told to misbehave for the next N requests (``fail_next``,
``delay_next``, ``drip_next``), and can run itself with uvicorn on 127.0.0.1 in a background thread::

    with FakeTelegram() as tg:            # started on a free port
        token = tg.add_bot()
        httpx.get(f"{tg.base_url}/bot{token}/getMe")
        assert tg.requests[-1].path.endswith("/getMe")

``async with`` works the same way. The server runs on its own thread and event loop, so sync tests, async
tests and the code under test all reach it over real TCP, and a test that blocks its own loop cannot stall it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import socket
import string
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import parse_qsl

import uvicorn
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Router
from starlette.types import Message, Receive, Scope, Send

__all__ = [
    "FakeServer",
    "LimitState",
    "RecordedRequest",
    "Reply",
    "RequestMatcher",
    "ServerRunner",
    "UploadedFile",
    "WindowLimiter",
    "json_response",
    "random_token",
    "read_params",
]

RequestMatcher = Callable[["RecordedRequest"], bool]

# The key under which the fake puts an asyncio.Event that is set when the client goes away; long-poll and slow
# handlers wait on it so that a client timeout frees the server task at once.
DISCONNECTED_KEY = "fakes.disconnected"


@dataclass(frozen=True)
class RecordedRequest:
    """One request exactly as it reached the fake, before any handler or injected failure looked at it."""

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    """Lower-cased header names; a repeated header's values are joined with ", "."""
    body: bytes
    received_at: float

    @property
    def query(self) -> dict[str, str]:
        """Query parameters; the last value wins when a name repeats."""
        return dict(parse_qsl(self.query_string, keep_blank_values=True))

    def query_all(self, name: str) -> list[str]:
        return [v for k, v in parse_qsl(self.query_string, keep_blank_values=True) if k == name]

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ("" when absent)."""
        return (self.headers.get("content-type") or "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def form(self) -> dict[str, str]:
        """The body parsed as application/x-www-form-urlencoded (empty for other content types)."""
        if self.content_type != "application/x-www-form-urlencoded":
            return {}
        return dict(parse_qsl(self.text, keep_blank_values=True))

    @property
    def bearer_token(self) -> str | None:
        """The credentials of an ``Authorization: Bearer ...`` header, None for any other scheme."""
        scheme, _, credentials = (self.headers.get("authorization") or "").partition(" ")
        return credentials.strip() or None if scheme.lower() == "bearer" else None


class Reply(Exception):
    """Raised by a handler to answer at once with ``response`` (an error envelope, usually)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None, media_type: str = "application/json"
) -> Response:
    """A compact JSON response (platforms send no pretty-printing, and byte counts matter for drip tests)."""
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(payload, status_code=status, headers=dict(headers or {}), media_type=media_type)


def random_token(length: int = 32, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def random_b64(nbytes: int) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).decode().rstrip("=")


async def read_params(request: Request) -> dict[str, Any]:
    """Query string, then the body (urlencoded form, multipart or a JSON object) merged over it.

    Graph and the Bot API both take parameters from any of these places; values from the query string and
    forms are strings, JSON keeps its types, and multipart files arrive as :class:`UploadedFile`.
    """
    params: dict[str, Any] = dict(request.query_params)
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                params[key] = UploadedFile(value.filename or "", value.content_type or "", await value.read())
            else:
                params[key] = str(value)
        # Uploads are spooled to temporary files that must be closed, or they leak until garbage collection.
        await form.close()
    elif content_type == "application/json":
        raw = await request.body()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise BadJson(str(exc)) from exc
            if not isinstance(body, dict):
                raise BadJson("the JSON body is not an object")
            params.update(body)
    return params


@dataclass(frozen=True)
class UploadedFile:
    """A multipart file part, read into memory."""

    filename: str
    content_type: str
    data: bytes


class BadJson(Exception):
    """The body claimed to be JSON and was not (or was not an object); each fake words this its own way."""


@dataclass(frozen=True)
class LimitState:
    """Where one rate-limit bucket stands after a request was counted (or refused)."""

    limit: int
    remaining: int
    reset_at: float
    """Epoch seconds at which the bucket refills."""
    allowed: bool

    @property
    def reset_after(self) -> float:
        return max(0.0, self.reset_at - time.time())


class WindowLimiter:
    """Fixed-window counters keyed by anything hashable, the way the platforms' per-route buckets behave.

    A window opens at the first request of a key and refills ``window`` seconds later; the request that
    finds the bucket empty is refused (``allowed=False``) and not counted.
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._buckets: dict[Any, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: Any, limit: int | None = None) -> LimitState:
        limit = self.limit if limit is None else limit
        now = time.time()
        with self._lock:
            reset_at, used = self._buckets.get(key, (now + self.window, 0))
            if now >= reset_at:
                reset_at, used = now + self.window, 0
            allowed = used < limit
            if allowed:
                used += 1
            self._buckets[key] = (reset_at, used)
        return LimitState(limit=limit, remaining=max(0, limit - used), reset_at=reset_at, allowed=allowed)

    def peek(self, key: Any, limit: int | None = None) -> LimitState:
        """Where the bucket stands, without counting a request."""
        limit = self.limit if limit is None else limit
        now = time.time()
        with self._lock:
            reset_at, used = self._buckets.get(key, (now + self.window, 0))
        if now >= reset_at:
            reset_at, used = now + self.window, 0
        return LimitState(limit=limit, remaining=max(0, limit - used), reset_at=reset_at, allowed=used < limit)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


@dataclass
class _Injection:
    remaining: int
    method: str | None
    path: str | None
    when: RequestMatcher | None
    status: int | None = None
    """None: the real handler answers (used by delay/drip injections)."""
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float | None = None

    def matches(self, request: RecordedRequest) -> bool:
        if self.method is not None and request.method != self.method.upper():
            return False
        if self.path is not None and self.path not in request.path:
            return False
        return self.when is None or self.when(request)


def _encode_body(body: Any) -> tuple[bytes, str]:
    if body is None:
        return b"", "text/plain"
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return json.dumps(body, separators=(",", ":")).encode(), "application/json"


class FakeServer:
    """Base of every fake platform: request log, failure injection, slow modes and a uvicorn runner.

    Subclasses return their Starlette routes from :meth:`routes`; handlers may ``raise Reply(response)``
    to answer early. Public state is plain attributes so a test can read or tweak it directly.

    Attributes:
        requests: every request received, in order (including ones answered by an injected failure).
        handler_errors: tracebacks of exceptions raised by the fake's own handlers (answered as 500
            ``fake server bug``); a test suite can assert it stays empty.
        latency: seconds to wait before every response (persistent; 0 = none).
        drip_seconds_per_byte: when set, every response body is sent one byte at a time with this pause
            between bytes (persistent slow-drip mode).
    """

    #: Name used in thread names and reprs.
    platform = "fake"

    def __init__(self, *, tls: bool = False) -> None:
        self.tls = tls
        """Serve HTTPS with the test CA's server certificate (see :attr:`ca_path`)."""
        self.requests: list[RecordedRequest] = []
        self.handler_errors: list[str] = []
        self.latency: float = 0.0
        self.drip_seconds_per_byte: float | None = None
        self._injections: list[_Injection] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._runner: ServerRunner | None = None
        self._router = Router(routes=self.routes())

    # ----------------------------------------------------------------- subclass hooks

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    # ----------------------------------------------------------------- running

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server (no trailing slash)."""
        if self._runner is None:
            raise RuntimeError(f"{type(self).__name__} is not running: use it as a context manager or call start()")
        return self._runner.base_url

    @property
    def ca_path(self) -> Path:
        """PEM of the CA that signed the HTTPS certificate (for clients that verify); only with ``tls=True``."""
        if not self.tls:
            raise RuntimeError(f"{type(self).__name__} was not created with tls=True")
        return _tls_files().ca_path

    def start(self, port: int = 0) -> Self:
        if self._runner is None:
            self._closing.clear()
            files = _tls_files() if self.tls else None
            self._runner = ServerRunner(
                self,
                port=port,
                name=f"fake-{self.platform}",
                ssl_certfile=files.cert_path if files else None,
                ssl_keyfile=files.key_path if files else None,
            )
            self._runner.start()
        return self

    def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            # Set before stopping so that dripping, delayed and long-polling handlers give up at once.
            self._closing.set()
            runner.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @classmethod
    def fixture(cls, *, scope: str = "function", name: str | None = None, **kwargs: Any) -> Any:
        """A pytest fixture yielding a started fake: ``fake_graph = FakeGraph.fixture()`` in a conftest.

        The test fails at teardown if the fake itself raised (see :attr:`handler_errors`).
        """
        import pytest

        @pytest.fixture(scope=scope, name=name)  # type: ignore[call-overload, untyped-decorator]
        def _fixture() -> Iterator[FakeServer]:
            with cls(**kwargs) as server:
                yield server
            if server.handler_errors:
                pytest.fail(f"{cls.__name__} raised inside a handler:\n" + "\n".join(server.handler_errors))

        return _fixture

    async def __aenter__(self) -> Self:
        # Starting takes a few milliseconds but blocks, so keep it off the test's event loop.
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    # ----------------------------------------------------------------- request log

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self.requests:
                raise AssertionError(f"{type(self).__name__} received no request")
            return self.requests[-1]

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """Requests whose path contains ``path`` (and whose method is ``method``, when given)."""
        with self._lock:
            return [r for r in self.requests if path in r.path and (method is None or r.method == method.upper())]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # ----------------------------------------------------------------- failure injection

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        path: str | None = None,
        when: RequestMatcher | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``n`` matching requests with this raw response instead of the real handler.

        ``body`` may be bytes, str or a JSON-able value. ``path`` matches as a substring of the request path,
        ``when`` is any predicate on the :class:`RecordedRequest`. Prefer the platform helpers
        (``rate_limit_next``, ``unauthorized_next``, ...) which build the platform's real envelope.
        """
        payload, media_type = _encode_body(body)
        hdrs = {"content-type": media_type}
        hdrs.update({k.lower(): v for k, v in (headers or {}).items()})
        self._inject(
            _Injection(
                remaining=n, method=method, path=path, when=when, status=status, body=payload, headers=hdrs, delay=delay
            )
        )

    def delay_next(
        self,
        seconds: float,
        n: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        when: RequestMatcher | None = None,
    ) -> None:
        """Hold the next ``n`` matching responses for ``seconds`` before sending anything (read timeouts)."""
        self._inject(_Injection(remaining=n, method=method, path=path, when=when, delay=seconds))

    def drip_next(
        self,
        seconds_per_byte: float = 1.0,
        n: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        when: RequestMatcher | None = None,
    ) -> None:
        """Send the next ``n`` matching responses (real status and headers) one body byte at a time.

        Each single read succeeds quickly, so a per-read timeout never fires: this catches clients that
        have no overall deadline.
        """
        self._inject(_Injection(remaining=n, method=method, path=path, when=when, drip=seconds_per_byte))

    def clear_injections(self) -> None:
        with self._lock:
            self._injections.clear()

    @property
    def pending_injections(self) -> int:
        with self._lock:
            return sum(i.remaining for i in self._injections)

    def _inject(self, injection: _Injection) -> None:
        if injection.remaining < 1:
            raise ValueError("n must be at least 1")
        with self._lock:
            self._injections.append(injection)

    def _take_injection(self, request: RecordedRequest) -> _Injection | None:
        with self._lock:
            for injection in self._injections:
                if injection.matches(request):
                    injection.remaining -= 1
                    if injection.remaining == 0:
                        self._injections.remove(injection)
                    return injection
        return None

    # ----------------------------------------------------------------- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        recorded = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            received_at=time.time(),
        )
        with self._lock:
            self.requests.append(recorded)

        disconnected = asyncio.Event()

        async def watch_disconnect() -> None:
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    disconnected.set()
                    return

        watcher = asyncio.create_task(watch_disconnect())
        body_sent = False

        async def replay_receive() -> Message:
            # The body was consumed above; hand it to the handler once, then report the disconnect when it comes.
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        scope = dict(scope)
        scope[DISCONNECTED_KEY] = disconnected
        try:
            injection = self._take_injection(recorded)
            delay = self.latency + (injection.delay if injection else 0.0)
            drip = injection.drip if injection and injection.drip is not None else self.drip_seconds_per_byte
            if injection is not None and injection.status is not None:
                start: Message = {
                    "type": "http.response.start",
                    "status": injection.status,
                    "headers": [(k.encode(), v.encode()) for k, v in injection.headers.items()]
                    + [(b"content-length", str(len(injection.body)).encode())],
                }
                response_body = injection.body
            else:
                start, response_body = await self._handle(scope, replay_receive)
            await self._emit(send, start, response_body, delay, drip, disconnected)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[Message, bytes]:
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        try:
            await self._router(scope, receive, capture)
        except Reply as reply:
            captured.clear()
            await reply.response(scope, receive, capture)
        except Exception:
            # A bug in the fake must surface as a loud 500 (and in handler_errors), never as a hung client.
            self.handler_errors.append(traceback.format_exc())
            captured = []
        starts = [m for m in captured if m["type"] == "http.response.start"]
        if not starts:
            text = b"fake server bug: see handler_errors"
            return (
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())],
                },
                text,
            )
        body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        return starts[0], body

    async def _emit(
        self, send: Send, start: Message, body: bytes, delay: float, drip: float | None, disconnected: asyncio.Event
    ) -> None:
        if delay > 0 and await self._pause(delay, disconnected):
            return
        with contextlib.suppress(Exception):  # the client may be gone mid-drip; nothing to tell it then
            await send(start)
            if drip is None or not body:
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            for index in range(len(body)):
                last = index == len(body) - 1
                await send({"type": "http.response.body", "body": body[index : index + 1], "more_body": not last})
                if not last and await self._pause(drip, disconnected):
                    return

    async def _pause(self, seconds: float, disconnected: asyncio.Event) -> bool:
        """Sleep ``seconds``; True when the client went away or the server is stopping meanwhile."""
        deadline = time.monotonic() + seconds
        while True:
            if disconnected.is_set() or self._closing.is_set():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(disconnected.wait(), timeout=min(left, 0.05))

    async def wait_until(self, request: Request, condition: Callable[[], bool], timeout: float) -> bool:
        """For long-poll handlers: wait until ``condition()`` holds, the client leaves, or ``timeout``."""
        disconnected: asyncio.Event = request.scope[DISCONNECTED_KEY]
        deadline = time.monotonic() + timeout
        while not condition():
            if disconnected.is_set() or self._closing.is_set() or time.monotonic() >= deadline:
                return condition()
            await asyncio.sleep(0.02)
        return True

    def __repr__(self) -> str:
        where = self._runner.base_url if self._runner else "stopped"
        return f"<{type(self).__name__} {where} requests={len(self.requests)}>"


class TlsFilesLike(Protocol):
    """What the fakes need of the mail fakes' test CA bundle."""

    @property
    def ca_path(self) -> Path: ...

    @property
    def cert_path(self) -> Path: ...

    @property
    def key_path(self) -> Path: ...


def _tls_files() -> TlsFilesLike:
    # The mail fakes own the test CA (one per process); sharing it means one CA for every TLS test server.
    from .mail import tls_files

    return tls_files()


class _ThreadServer(uvicorn.Server):
    """uvicorn tuned for per-test servers: stop within ~10 ms instead of ~0.2 s.

    Overrides two uvicorn internals (checked against 0.54): the main loop polls ``should_exit`` every 10 ms
    instead of 100 ms, and shutdown skips the graceful pause and the wait for open connections, whose tasks
    ``asyncio.run`` then cancels.
    """

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            await asyncio.sleep(0.01)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()


class ServerRunner:
    """Runs an ASGI app with uvicorn on ``host`` (a free port by default) on a daemon thread.

    The socket is bound before the thread starts so the port is known at once and never raced for.
    uvicorn installs signal handlers only on the main thread, so running it here leaves the test
    process's Ctrl-C handling alone.
    """

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "fake-server",
        ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None,
    ) -> None:
        self._app = app
        self._ssl_certfile = ssl_certfile
        self._ssl_keyfile = ssl_keyfile
        self._host = host
        self._port = port
        self._name = name
        self._server: _ThreadServer | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("not started")
        return int(self._socket.getsockname()[1])

    @property
    def base_url(self) -> str:
        scheme = "https" if self._ssl_certfile else "http"
        return f"{scheme}://{self._host}:{self.port}"

    def start(self, timeout: float = 5.0) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._socket = sock
        config = uvicorn.Config(
            self._app,
            host=self._host,
            port=self.port,
            lifespan="off",
            http="h11",
            ws="none",
            loop="asyncio",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            ssl_certfile=self._ssl_certfile,
            ssl_keyfile=self._ssl_keyfile,
        )
        self._server = _ThreadServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name=self._name
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"{self._name} failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self._name} did not start within {timeout} s")
            time.sleep(0.001)

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
            # Skip the graceful wait for open keep-alive connections: tests want teardown now.
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
