"""Gateways against the fake platform servers over real loopback HTTP (the production client and transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from types import ModuleType
from typing import Any

import pytest

from hermes.adapters.platforms.base import StructTool
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.http import make_client
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.application.ports.tools import ToolContext
from hermes.domain.credentials import Credentials
from hermes.domain.errors import HermesError
from hermes.domain.platform import Platform


class Gateway:
    """One plug-in built exactly as the composition root builds it, pointed at a fake."""

    def __init__(self, module: ModuleType, platform: Platform, base: str, **config: Any) -> None:
        self.config = PlatformConfig(api_bases={platform: base}, **config)
        self.http = make_client(self.config)
        self.plugin: PlatformPlugin = module.plugin(self.http, self.config)
        self.tools: dict[str, StructTool] = {t.spec.name: t for t in self.plugin.tools}  # type: ignore[misc]

    async def call(self, name: str, arguments: Mapping[str, Any], credentials: Credentials) -> dict[str, Any]:
        tool = self.tools[name]
        return await tool.run(tool.parse(arguments), ToolContext(customer_id="c1", credentials=credentials))


@pytest.fixture
async def gateway() -> AsyncIterator[Callable[..., Gateway]]:
    built: list[Gateway] = []

    def build(module: ModuleType, platform: Platform, base: str, **config: Any) -> Gateway:
        config.setdefault("total_timeout", 10.0)
        gw = Gateway(module, platform, base, **config)
        built.append(gw)
        return gw

    yield build
    for gw in built:
        await gw.http.aclose()


def assert_clean(error: HermesError, *secrets: str) -> None:
    """Nothing secret (tokens, message bodies) in what the error shows, and no chained library exception."""
    shown = f"{error.detail} {error!r} {getattr(error, 'code', '')}"
    for secret in secrets:
        assert secret not in shown, f"{secret!r} leaked into {shown!r}"
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
