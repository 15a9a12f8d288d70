"""A request-body cap for raw ASGI endpoints that Litestar's own `request_max_body_size` does not reach."""

from __future__ import annotations

from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hermes.entrypoints.http.raw_asgi import problem


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


class BodyCap:
    """Refuse a body over `limit` bytes with 413 problem+json, by its Content-Length or while it streams in.

    The body is read before the endpoint runs (these endpoints read it whole anyway),
    so nothing past the cap is ever held and the endpoint never sees half a body. The
    connection stays open: closing it while the client still sends would reset it,
    and the client would never read the 413.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    break
                if declared > self.limit:
                    await problem(send, 413, "Request body too large", _too_large(self.limit))
                    return
        body = bytearray()
        held: deque[Message] = deque()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                held.append(message)
                break
            body += message.get("body", b"")
            if len(body) > self.limit:
                await problem(send, 413, "Request body too large", _too_large(self.limit))
                return
            if not message.get("more_body", False):
                break
        held.appendleft({"type": "http.request", "body": bytes(body), "more_body": False})

        async def replay() -> Message:
            return held.popleft() if held else await receive()

        await self.app(scope, replay, send)
