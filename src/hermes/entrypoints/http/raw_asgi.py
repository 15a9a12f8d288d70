"""Plain ASGI for the two hot paths Litestar does not route: Meta's webhook and /mcp.

They apply the same body-size policy as Litestar's routes (HERMES_MAX_BODY_BYTES): a declared
length over the cap is refused before reading, and a body is counted as it streams in and
refused the moment it passes the cap, so nothing larger is ever held in memory.

Both are called far more often than any other route and need neither Litestar's routing
nor dishka's per-request container; they are put ahead of the app by `fast_paths`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp
from litestar.types import Receive as LitestarReceive
from litestar.types import Scope as LitestarScope
from litestar.types import Send as LitestarSend
from starlette.types import Message, Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]
TEXT: Headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"x-content-type-options", b"nosniff")]
_PROBLEM = (b"content-type", b"application/problem+json")
_encode = msgspec.json.Encoder().encode


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


def fast_paths(app: ASGIApp, routes: Mapping[str, str], max_body_bytes: int) -> ASGIApp:
    """Send each path in `routes` straight to the handler kept in `app.state.<name>` (built in the lifespan).

    A POST body reaches the handler only once it is known to fit `max_body_bytes`: over it,
    the answer is 413 problem details, as on every other route.
    Installed over the Litestar app's ASGI handler after `setup_dishka`.
    """

    # The route as the request metrics name it (Litestar sets it for the routes it serves): "/mcp/" is "/mcp".
    templates = {path: path.rstrip("/") or "/" for path in routes}

    async def handle(scope: LitestarScope, receive: LitestarReceive, send: LitestarSend) -> None:
        if scope["type"] == ScopeType.HTTP and (name := routes.get(scope["path"])) is not None:
            scope["path_template"] = templates[scope["path"]]
            handler = getattr(scope["litestar_app"].state, name)
            if scope["method"] == "POST":
                raw_scope, raw_receive, raw_send = cast(Scope, scope), cast(Receive, receive), cast(Send, send)
                declared = declared_length(raw_scope)
                fits = declared is None or declared <= max_body_bytes
                body = await read_capped(raw_receive, max_body_bytes) if fits else None
                if body is None:
                    await too_large(raw_send, max_body_bytes)
                    return
                receive = cast(LitestarReceive, replay(body, raw_receive))
            await handler(scope, receive, send)
            return
        await app(scope, receive, send)

    return handle
