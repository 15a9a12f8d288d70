"""The body cap of raw ASGI endpoints: refused by Content-Length or while streaming, as problem+json."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from hermes.entrypoints.http.body_cap import BodyCap


class Echo:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, Any], int]:
    """The status, the JSON body (if any) and how many chunks the cap read."""
    pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        read += 1
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "http", "headers": headers}, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    start = next(m for m in sent if m["type"] == "http.response.start")
    content_type = dict(start["headers"]).get(b"content-type", b"")
    return start["status"], json.loads(body) if content_type == b"application/problem+json" else {}, read


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    echo = Echo()
    status, problem, read = await call(BodyCap(echo, 100), [b"x" * 500], [(b"content-length", b"500")])
    assert (status, read, echo.bodies) == (413, 0, [])
    assert problem["title"] == "Request body too large" and "100 bytes" in problem["detail"]


async def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_cap() -> None:
    echo = Echo()
    status, _, read = await call(BodyCap(echo, 100), [b"x" * 60] * 10, [])
    assert (status, read, echo.bodies) == (413, 2, [])


async def test_a_body_within_the_cap_reaches_the_endpoint_whole() -> None:
    echo = Echo()
    status, _, _ = await call(BodyCap(echo, 100), [b"a" * 50, b"b" * 50], [(b"content-length", b"100")])
    assert (status, echo.bodies) == (200, [b"a" * 50 + b"b" * 50])
