"""The official MCP client over real HTTP, in either protocol generation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

# "legacy" = 2025-11-25 with initialize; "auto" negotiates 2026-07-28.
MODES = ["legacy", "auto"]


@asynccontextmanager
async def mcp_session(base_url: str, token: str, mode: str = "auto") -> AsyncIterator[Any]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    async with http, Client(streamable_http_client(f"{base_url}/mcp", http_client=http), mode=mode) as client:
        yield client
