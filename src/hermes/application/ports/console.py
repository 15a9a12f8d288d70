"""Where console sessions live, looked up by the digest of their id (never the id itself)."""

from __future__ import annotations

from typing import Protocol

from hermes.domain.console import ConsoleSession


class ConsoleSessionStore(Protocol):
    async def open(self, digest: str, session: ConsoleSession, idle_ttl: int) -> None:
        """Keep a new session for `idle_ttl` seconds."""
        ...

    async def touch(self, digest: str, idle_ttl: int) -> ConsoleSession | None:
        """The session, its idle lifetime started again; None when it is gone or expired."""
        ...

    async def close(self, digest: str) -> None:
        """End the session; nothing when it is already gone."""
        ...
