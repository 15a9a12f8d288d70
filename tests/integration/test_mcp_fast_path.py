"""/mcp's hot methods answered without the SDK's transport say exactly what the SDK says.

Each request is sent twice: once plainly (Hermes answers it), once with its Accept header repeated,
which Hermes leaves to the SDK (a repeated header is one it does not judge). The two answers must
be the same, on both protocol generations, for successes and for every kind of refusal.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from tests.integration.server import HermesServer

pytestmark = pytest.mark.asyncio

LEGACY, MODERN = "2025-11-25", "2026-07-28"


class SdkCount:
    """How many requests reached the SDK's session manager."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = StreamableHTTPSessionManager.handle_request

        async def counted(manager: StreamableHTTPSessionManager, scope: Any, receive: Any, send: Any) -> None:
            self.calls += 1
            await original(manager, scope, receive, send)

        monkeypatch.setattr(StreamableHTTPSessionManager, "handle_request", counted)


@pytest.fixture
def sdk(hermes: HermesServer, monkeypatch: pytest.MonkeyPatch) -> SdkCount:
    return SdkCount(monkeypatch)


def _request(protocol: str, method: str, params: dict[str, Any], name: str | None = None) -> tuple[bytes, list]:
    headers = [("content-type", "application/json"), ("mcp-protocol-version", protocol)]
    if protocol == MODERN:
        params = {
            **params,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": protocol,
                "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        }
        headers += [("mcp-method", method)] + ([("mcp-name", name)] if name is not None else [])
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).encode()
    return body, headers


async def _both(
    hermes: HermesServer, key: str, body: bytes, headers: list, sdk: SdkCount, fast_path: bool = True
) -> tuple[Any, Any]:
    auth = [("authorization", f"Bearer {key}")]
    async with httpx.AsyncClient(base_url=hermes.url) as client:
        before = sdk.calls
        fast = await client.post("/mcp", content=body, headers=[*headers, *auth, ("accept", "application/json")])
        assert sdk.calls == before + (not fast_path), "a plain request went to the SDK"
        before = sdk.calls
        accept = [("accept", "application/json"), ("accept", "application/json")]
        slow = await client.post("/mcp", content=body, headers=[*headers, *auth, *accept])
        assert sdk.calls == before + 1, "a request with a repeated header did not go to the SDK"
    return fast, slow


def _same(fast: httpx.Response, slow: httpx.Response) -> None:
    assert fast.status_code == slow.status_code
    assert fast.headers["content-type"] == slow.headers["content-type"]
    assert fast.json() == slow.json()


@pytest.mark.parametrize("protocol", [LEGACY, MODERN])
@pytest.mark.parametrize(
    ("method", "params", "name"),
    [
        ("tools/list", {}, None),
        ("tools/call", {"name": "connections_status", "arguments": {}}, "connections_status"),
        ("tools/call", {"name": "inbox_list", "arguments": {"limit": "many"}}, "inbox_list"),
        ("tools/call", {"name": "no_such_tool", "arguments": {}}, "no_such_tool"),
        ("tools/call", {"name": "whatsapp_send_message", "arguments": {"to": "+15550001111"}}, "whatsapp_send_message"),
        ("tools/call", {"arguments": {}}, None),
        ("tools/call", {"name": 5}, None),
    ],
)
async def test_the_answer_is_the_sdk_s(
    hermes: HermesServer, sdk: SdkCount, protocol: str, method: str, params: dict[str, Any], name: str | None
) -> None:
    customer = await hermes.create_customer()
    body, headers = _request(protocol, method, params, name)
    # On 2026-07-28 a tool name that is not a string cannot match Mcp-Name: the SDK refuses that itself.
    plain = protocol == LEGACY or not isinstance(params.get("name"), int)
    fast, slow = await _both(hermes, customer["apiKey"], body, headers, sdk, fast_path=plain)
    _same(fast, slow)
    if method == "tools/list":
        assert {t["name"] for t in fast.json()["result"]["tools"]} >= {"connections_status", "inbox_list"}


async def test_discovery_is_the_sdk_s(hermes: HermesServer, sdk: SdkCount) -> None:
    customer = await hermes.create_customer()
    body, headers = _request(MODERN, "server/discover", {})
    fast, slow = await _both(hermes, customer["apiKey"], body, headers, sdk)
    _same(fast, slow)
    assert fast.json()["result"]["supportedVersions"]


@pytest.mark.parametrize(
    "change",
    [
        {"mcp-name": "inbox_list"},  # disagrees with the body's tool name
        {"mcp-method": "tools/list"},  # disagrees with the body's method
        {"mcp-protocol-version": "2099-01-01"},  # no such version
        {"host": "evil.example"},  # DNS rebinding
        {"origin": "https://evil.example"},
        {"content-type": "text/plain"},
        {"accept": "text/html"},
    ],
)
async def test_refusals_stay_the_sdk_s(hermes: HermesServer, sdk: SdkCount, change: dict[str, str]) -> None:
    customer = await hermes.create_customer()
    body, headers = _request(
        MODERN, "tools/call", {"name": "connections_status", "arguments": {}}, "connections_status"
    )
    sent = dict(headers) | {"accept": "application/json", "authorization": f"Bearer {customer['apiKey']}"} | change
    async with httpx.AsyncClient(base_url=hermes.url) as client:
        reply = await client.post("/mcp", content=body, headers=sent)
    assert sdk.calls == 1, "a request the SDK refuses must reach the SDK"
    assert reply.status_code >= 400


@pytest.mark.parametrize("body", [b"[]", b"{", b'{"jsonrpc": "2.0", "method": "notifications/initialized"}'])
async def test_batches_notifications_and_garbage_go_to_the_sdk(
    hermes: HermesServer, sdk: SdkCount, body: bytes
) -> None:
    customer = await hermes.create_customer()
    headers = {
        "content-type": "application/json",
        "accept": "application/json",
        "mcp-protocol-version": LEGACY,
        "authorization": f"Bearer {customer['apiKey']}",
    }
    async with httpx.AsyncClient(base_url=hermes.url) as client:
        reply = await client.post("/mcp", content=body, headers=headers)
    assert sdk.calls == 1
    assert reply.status_code in (202, 400)
