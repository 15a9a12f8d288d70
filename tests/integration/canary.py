"""The secret canary: a credential and an API key that must never show up anywhere readable.

At the start of the integration session a canary customer is created through the real
API, connects Telegram with a canary bot token and makes tool calls that succeed and
fail. For the whole session every HTTP response any test receives through httpx is
scanned, and every log record is kept. At the end the Redis dump, the database dump,
the logs and the responses must not contain either canary in plaintext.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

CANARY_BOT_TOKEN = "987654321:CANARY" + secrets.token_hex(15)


class ResponseScanner:
    """Wraps httpx's client send (sync and async) to look at every response body of the session."""

    def __init__(self) -> None:
        self.canaries: list[str] = [CANARY_BOT_TOKEN]
        self.leaks: list[str] = []
        self.scanned = 0
        self._originals: dict[str, Any] = {}

    def _check(self, response: httpx.Response) -> None:
        self.scanned += 1
        try:
            body = response.content.decode(errors="replace")
        except httpx.ResponseNotRead:
            return  # a streamed response the test never read; its bytes reach no one
        text = body + " " + " ".join(f"{k}: {v}" for k, v in response.headers.items())
        for canary in self.canaries:
            if canary in text:
                self.leaks.append(f"{response.request.method} {response.request.url} leaked a canary")

    def install(self) -> None:
        async_send = httpx.AsyncClient.send
        sync_send = httpx.Client.send
        self._originals = {"async": async_send, "sync": sync_send}
        scanner = self

        async def scanned_async(client: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            response = await async_send(client, request, **kwargs)
            if not kwargs.get("stream"):
                scanner._check(response)
            return response

        def scanned_sync(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            response = sync_send(client, request, **kwargs)
            if not kwargs.get("stream"):
                scanner._check(response)
            return response

        httpx.AsyncClient.send = scanned_async  # type: ignore[method-assign,assignment]
        httpx.Client.send = scanned_sync  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        httpx.AsyncClient.send = self._originals["async"]  # type: ignore[method-assign]
        httpx.Client.send = self._originals["sync"]  # type: ignore[method-assign]


def find_canaries(haystacks: dict[str, str | bytes], canaries: list[str]) -> list[str]:
    found = []
    for where, haystack in haystacks.items():
        data = haystack.encode() if isinstance(haystack, str) else haystack
        found += [f"{where} holds a canary" for c in canaries if c.encode() in data]
    return found
