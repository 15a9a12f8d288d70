"""The tool catalogue, credential verifier and inbound sides over every built plug-in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from hermes.application.ports.platform_inbound import InboundSide, InboundSides
from hermes.application.ports.tools import CredentialVerifier, Tool, ToolCatalog, ToolSpec
from hermes.domain.credentials import Credentials
from hermes.domain.platform import Platform

Verify = Callable[[Credentials], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PlatformPlugin:
    """One platform: its tools, the cheap call that proves credentials work, and what it receives."""

    platform: Platform
    tools: Sequence[Tool]
    verify: Verify
    inbound: InboundSide | None = None


@dataclass(slots=True)
class Registry(ToolCatalog, CredentialVerifier, InboundSides):
    """The tool catalogue and credential verifier over every plug-in (plus built-in tools)."""

    plugins: Sequence[PlatformPlugin]
    builtin: Sequence[Tool] = ()
    _tools: dict[str, Tool] = field(init=False)
    _specs: list[ToolSpec] = field(init=False)
    _verifiers: dict[Platform, Verify] = field(init=False)
    _inbound: dict[Platform, InboundSide] = field(init=False)

    def __post_init__(self) -> None:
        everything: Iterable[Tool] = [t for p in self.plugins for t in p.tools] + list(self.builtin)
        self._tools = {}
        for t in everything:
            if t.spec.name in self._tools:
                raise ValueError(f"tool {t.spec.name} is declared twice")
            self._tools[t.spec.name] = t
        self._specs = [t.spec for t in self._tools.values()]
        self._verifiers = {p.platform: p.verify for p in self.plugins}
        self._inbound = {p.platform: p.inbound for p in self.plugins if p.inbound is not None}

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def specs(self) -> Sequence[ToolSpec]:
        return self._specs

    async def verify(self, platform: Platform, credentials: Credentials) -> None:
        check = self._verifiers.get(platform)
        if check is not None:
            await check(credentials)

    def inbound(self, platform: Platform) -> InboundSide | None:
        return self._inbound.get(platform)
