from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.console import ConsoleSessionStore
from hermes.domain.console import SESSION_ID_LENGTH, session_digest


@dataclass(slots=True)
class SignOutOfConsole:
    """End a console session at once; signing out of a session that has ended is not an error."""

    sessions: ConsoleSessionStore

    async def __call__(self, session_id: str | None) -> None:
        if session_id and len(session_id) == SESSION_ID_LENGTH:
            await self.sessions.close(session_digest(session_id))
