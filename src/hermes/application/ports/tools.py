"""Tools an agent can call, and the platform side that carries them out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hermes.application.untrusted import UntrustedText
from hermes.domain.credentials import Credentials
from hermes.domain.platform import Platform


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What a client sees of a tool: name, description, JSON schemas and behaviour hints."""

    name: str
    platform: Platform | None
    description: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any] | None = None
    title: str | None = None
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = True
    # Where the result holds text third parties wrote (fenced in the text a model reads).
    untrusted: tuple[UntrustedText, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who is calling and with which credentials (None for platform-independent tools)."""

    customer_id: str | None
    credentials: Credentials | None = None
    connected: Sequence[Platform] = field(default=())
    # Calls another tool for the same caller, through the same checks, quota and audit (None outside CallTool).
    call: Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any]]] | None = None


class Tool(Protocol):
    spec: ToolSpec

    def parse(self, arguments: Mapping[str, Any]) -> Any:
        """Validated arguments, or `Invalid` naming the offending fields."""
        ...

    def target(self, parsed: Any) -> str | None:
        """Recipient, chat, channel or path, for the audit log (never a body)."""
        ...

    async def run(self, parsed: Any, context: ToolContext) -> dict[str, Any]: ...


class ToolCatalog(Protocol):
    def get(self, name: str) -> Tool | None: ...

    def specs(self) -> Sequence[ToolSpec]: ...


class CredentialVerifier(Protocol):
    async def verify(self, platform: Platform, credentials: Credentials) -> None:
        """One cheap authenticated call; `PlatformRejected` when the platform refuses the credentials."""
        ...


class EnvCredentials(Protocol):
    """Single-user mode's `{PLATFORM}_DEFAULT_*` credentials."""

    def get(self, platform: Platform) -> Credentials | None: ...
