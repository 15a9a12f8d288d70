"""Plain ASGI for the hot paths Litestar does not route: /mcp and the platforms' webhooks.

`HermesAsgi` is the outer router: `/mcp` and `/webhook/*` go straight to their entry points
(called far more often than any other route, they need neither Litestar's routing nor
dishka's per-request container: 1.7x the throughput), everything else to Litestar. Each
applies a body cap (HERMES_MAX_BODY_BYTES for /mcp, HERMES_WEBHOOK_MAX_BODY_BYTES for
webhooks): a declared length over the cap is refused before reading, and a body is counted as
it streams in and refused the moment it passes the cap, so nothing larger is ever held.

`PROBLEM_KINDS` is the one mapping from error kinds to problem statuses and titles, used by
the HTTP routes, /mcp and the webhooks alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from starlette.types import ASGIApp as RawApp
from starlette.types import Message, Receive, Scope, Send

from hermes.domain.errors import (
    Conflict,
    Forbidden,
    HermesError,
    Invalid,
    NotFound,
    PlatformRejected,
    RateLimited,
    Unauthorized,
    Unavailable,
)

Headers = list[tuple[bytes, bytes]]
TEXT: Headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"x-content-type-options", b"nosniff")]
_PROBLEM = (b"content-type", b"application/problem+json")
_encode = msgspec.json.Encoder().encode


PROBLEM_KINDS: list[tuple[type[HermesError], int, str]] = [
    (Invalid, 400, "Invalid request"),
    (Unauthorized, 401, "Unauthorized"),
    (Forbidden, 403, "Forbidden"),
    (NotFound, 404, "Not found"),
    (Conflict, 409, "Conflict"),
    (RateLimited, 429, "Too many requests"),
    (PlatformRejected, 502, "Platform error"),
    (Unavailable, 503, "Service unavailable"),
]


def status_of(exc: HermesError) -> tuple[int, str]:
    """The problem status and title of an error kind (500 for a kind not in the table)."""
    return next(((s, t) for kind, s, t in PROBLEM_KINDS if isinstance(exc, kind)), (500, "Internal error"))


def retry_after(exc: HermesError) -> Headers:
    """Retry-After for the kinds that carry a wait."""
    wait = getattr(exc, "retry_after", None)
    if isinstance(exc, RateLimited | Unavailable | PlatformRejected) and wait is not None:
        return [(b"retry-after", str(max(1, round(wait))).encode())]
    return []


async def error_problem(send: Send, exc: HermesError, headers: Headers | None = None) -> None:
    """The problem an error kind answers with, on a plain ASGI path (detail: the error's own words)."""
    status, title = status_of(exc)
    await problem(send, status, title, exc.detail, [*retry_after(exc), *(headers or [])])


async def respond(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def problem(send: Send, status: int, title: str, detail: str, headers: Headers | None = None) -> None:
    """An RFC 9457 problem, shaped like the rest of the API's errors."""
    body = _encode({"type": "about:blank", "title": title, "status": status, "detail": detail})
    await respond(send, status, body, [_PROBLEM, *(headers or [])])


def too_large_detail(limit: int) -> str:
    """The one text of every 413, whichever route refused the body."""
    return f"the request body is larger than {limit} bytes, the limit of this server"


async def too_large(send: Send, limit: int) -> None:
    await problem(send, 413, "Request body too large", too_large_detail(limit))


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header, or None when absent or not a number (chunked bodies are counted as read)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def read_capped(receive: Receive, limit: int) -> bytes | None:
    """The whole body, counted as it arrives; None as soon as it passes `limit` (never held beyond it)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""  # the client went away
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands an app the body already read, then whatever the connection says next."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


@dataclass(slots=True)
class HermesAsgi:
    """The outer router: `/mcp` and `/webhook/*` to their entry points, everything else to Litestar.

    The entry points come from the container when the app starts (`start`); until then, and
    after it stops, their paths answer 503 rather than reach a half-built endpoint.
    """

    litestar: RawApp
    max_body_bytes: int
    webhook_max_body_bytes: int
    mcp: RawApp | None = None
    webhooks: RawApp | None = None

    def start(self, mcp: RawApp, webhooks: RawApp) -> None:
        self.mcp, self.webhooks = mcp, webhooks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path in ("/mcp", "/mcp/"):
                # The route as the request metrics name it (Litestar sets it for the routes it serves).
                scope["path_template"] = "/mcp"
                await self._capped(self.mcp, self.max_body_bytes, scope, receive, send)
                return
            if path.startswith("/webhook/"):
                scope["path_template"] = "/webhook/{platform}"  # one label, whatever strangers send
                await self._capped(self.webhooks, self.webhook_max_body_bytes, scope, receive, send)
                return
        await self.litestar(scope, receive, send)

    async def _capped(self, app: RawApp | None, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        if app is None:
            await problem(send, 503, "Service unavailable", "starting or stopping; retry", [(b"retry-after", b"1")])
            return
        if scope["method"] == "POST":
            declared = declared_length(scope)
            body = await read_capped(receive, limit) if declared is None or declared <= limit else None
            if body is None:
                await too_large(send, limit)
                return
            receive = replay(body, receive)
        await app(scope, receive, send)
