"""The one outbound HTTP client per instance, shared by every platform gateway.

httpx with the aiohttp transport: the default httpx transport costs ~3.5x more CPU
per call here (PERFORMANCE.md), and connection reuse matters more than anything else.
"""

from __future__ import annotations

import httpx
from httpx_aiohttp import AiohttpTransport

from hermes.adapters.platforms.config import PlatformConfig


def make_client(config: PlatformConfig) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=128, keepalive_expiry=30)
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits, trust_env=False),
        timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
        headers={"User-Agent": config.user_agent},
        follow_redirects=False,
        trust_env=False,
    )
