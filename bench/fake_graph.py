"""The leanest possible stand-in for the Graph API's send endpoint, so the benchmark measures Hermes."""

from __future__ import annotations

from typing import Any

_BODY = (
    b'{"messaging_product":"whatsapp","contacts":[{"input":"+15550001111","wa_id":"15550001111"}],'
    b'"messages":[{"id":"wamid.HBgLMTU1NTAwMDExMTEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}]}'
)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = _BODY if scope["method"] == "POST" else b'{"status":"ok"}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
