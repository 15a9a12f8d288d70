"""Scripted platform replies for the gateway unit tests: httpx.MockTransport, no network."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from types import ModuleType
from typing import Any

import httpx
import msgspec

from hermes.adapters.platforms.base import StructTool
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.http import make_client
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.application.ports.tools import ToolContext
from hermes.domain.credentials import Credentials
from hermes.domain.errors import HermesError
from hermes.domain.platform import Platform
from hermes.entrypoints.http.problems import error_text

BASES = {
    Platform.WHATSAPP: "https://graph.test/v23.0",
    Platform.INSTAGRAM: "https://graph.test/v23.0",
    Platform.TELEGRAM: "https://telegram.test",
    Platform.DISCORD: "https://discord.test/api/v10",
    Platform.TWITTER: "https://x.test",
    Platform.LINKEDIN: "https://linkedin.test",
}

Step = httpx.Response | Exception | Callable[[httpx.Request], Awaitable[httpx.Response] | httpx.Response]


def reply(status: int = 200, body: Any = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
    """A platform reply; dict/list bodies are sent as compact JSON, as the platforms do."""
    hdrs = dict(headers or {})
    if body is None:
        return httpx.Response(status, headers=hdrs)
    if isinstance(body, bytes | str):
        return httpx.Response(status, content=body if isinstance(body, bytes) else body.encode(), headers=hdrs)
    hdrs.setdefault("content-type", "application/json")
    return httpx.Response(status, content=json.dumps(body, separators=(",", ":")).encode(), headers=hdrs)


class Script:
    """Answers each request with the next step, and records what arrived and when."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(time.monotonic())
        await request.aread()
        if not self.steps:
            raise AssertionError(f"unexpected request {request.method} {request.url.path}")
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        result = step(request)
        if asyncio.iscoroutine(result):
            return await result
        assert isinstance(result, httpx.Response)
        return result

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


class Gateway:
    """One platform plug-in over a scripted transport, with its tools by name."""

    def __init__(self, module: ModuleType, script: Script, **config: Any) -> None:
        self.config = PlatformConfig(api_bases=dict(BASES), **config)
        self.http = make_client(self.config, transport=httpx.MockTransport(script))
        self.plugin: PlatformPlugin = module.plugin(self.http, self.config)
        self.tools: dict[str, StructTool] = {t.spec.name: t for t in self.plugin.tools}  # type: ignore[misc]
        self.script = script

    async def call(self, name: str, arguments: Mapping[str, Any], credentials: Credentials) -> dict[str, Any]:
        tool = self.tools[name]
        return await tool.run(tool.parse(arguments), ToolContext(customer_id="c1", credentials=credentials))

    def conforms(self, name: str, result: dict[str, Any], result_type: type[msgspec.Struct]) -> None:
        """The result matches the Struct behind the tool's output schema."""
        msgspec.convert(result, result_type)
        assert self.tools[name].spec.output_schema is not None

    async def aclose(self) -> None:
        await self.http.aclose()


def assert_clean(error: HermesError, *secrets: str) -> None:
    """No secret or body in anything the error shows, and no chained library exception (they quote URLs)."""
    shown = f"{error.detail} {error} {error!r} {getattr(error, 'code', '')}"
    for secret in secrets:
        assert secret not in shown, f"{secret!r} leaked into {shown!r}"
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def shown(error: HermesError) -> str:
    """The text a caller reads for this error (the same over MCP and REST)."""
    return error_text(error)
