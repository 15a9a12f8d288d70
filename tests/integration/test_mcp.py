"""/mcp with the official MCP client over real HTTP: auth, tool listing per customer, errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from tests.integration.mcp_client import MODES, mcp_session
from tests.integration.server import HermesServer
from tests.integration.tools_e2e.world import CONVERSATION_TOOLS
from tests.support import MCP_API_KEY


@pytest.mark.parametrize("mode", MODES)
async def test_customer_sees_only_connected_platform_tools(hermes: HermesServer, mode: str) -> None:
    customer = await hermes.create_customer()
    async with mcp_session(hermes.url, customer["apiKey"], mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"connections_status", "inbox_list", "inbox_wait", *CONVERSATION_TOOLS}
        status = await client.call_tool("connections_status", {})
        assert status.is_error is False
        assert status.structured_content["connections"]["whatsapp"] is False


@pytest.mark.parametrize("mode", MODES)
async def test_single_user_key_sees_env_configured_platforms(settings: Any, start_hermes: Any, mode: str) -> None:
    env = {
        "TELEGRAM_DEFAULT_BOT_TOKEN": "123456789:" + "B" * 35,
    }
    server = start_hermes(settings, env)
    async with mcp_session(server.url, MCP_API_KEY, mode) as client:
        status = await client.call_tool("connections_status", {})
    assert status.structured_content["connections"]["telegram"] is True
    assert status.structured_content["connections"]["whatsapp"] is False


@pytest.mark.parametrize("token", ["", "nope", "hms_" + "q" * 43, "mcp-wrong-key"])
async def test_anything_else_is_401_with_www_authenticate(hermes: HermesServer, token: str) -> None:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient(base_url=hermes.url) as client:
        reply = await client.post("/mcp", json=body, headers=headers)
    assert reply.status_code == 401
    challenge = reply.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'resource_metadata="' in challenge and "/.well-known/oauth-protected-resource" in challenge


async def test_get_on_mcp_is_405(hermes: HermesServer) -> None:
    async with httpx.AsyncClient(base_url=hermes.url) as client:
        reply = await client.get("/mcp", headers={"Authorization": f"Bearer {MCP_API_KEY}"})
    assert reply.status_code == 405
    assert reply.headers["allow"] == "POST"


@pytest.mark.parametrize("mode", MODES)
async def test_unknown_tool_is_invalid_params_and_bad_arguments_a_tool_error(hermes: HermesServer, mode: str) -> None:
    customer = await hermes.create_customer()
    async with mcp_session(hermes.url, customer["apiKey"], mode) as client:
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("myspace_post", {})
        assert unknown.value.code == INVALID_PARAMS
        assert "myspace_post" in unknown.value.error.message
        bad = await client.call_tool("connections_status", {"surprise": 1})
        assert bad.is_error
        assert "surprise" in bad.content[0].text
