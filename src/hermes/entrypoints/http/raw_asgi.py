"""Plain ASGI for the two hot paths Litestar does not route: Meta's webhook and /mcp.

Both are called far more often than any other route and need neither Litestar's routing
nor dishka's per-request container; they are put ahead of the app by `fast_paths`.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp
from litestar.types import Receive as LitestarReceive
from litestar.types import Scope as LitestarScope
from litestar.types import Send as LitestarSend
from starlette.types import Send

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


def fast_paths(app: ASGIApp, routes: Mapping[str, str]) -> ASGIApp:
    """Send each path in `routes` straight to the handler kept in `app.state.<name>` (built in the lifespan).

    Installed over the Litestar app's ASGI handler after `setup_dishka`.
    """

    # The route as the request metrics name it (Litestar sets it for the routes it serves): "/mcp/" is "/mcp".
    templates = {path: path.rstrip("/") or "/" for path in routes}

    async def handle(scope: LitestarScope, receive: LitestarReceive, send: LitestarSend) -> None:
        if scope["type"] == ScopeType.HTTP and (name := routes.get(scope["path"])) is not None:
            scope["path_template"] = templates[scope["path"]]
            await getattr(scope["litestar_app"].state, name)(scope, receive, send)
            return
        await app(scope, receive, send)

    return handle
