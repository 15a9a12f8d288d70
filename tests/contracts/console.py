"""The console session store's contract, run on the in-memory (unit) and Redis (integration) adapters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from hermes.application.ports.console import ConsoleSessionStore
from hermes.domain.console import ConsoleSession, new_session_id, session_digest

WHEN = datetime(2026, 5, 8, 12, 0, 0, 123456, tzinfo=UTC)


def a_session(customer_id: str = "cust_0123456789abcdef") -> tuple[str, ConsoleSession]:
    return session_digest(new_session_id()), ConsoleSession(customer_id, "ab" * 32, WHEN)


class ConsoleSessionStoreContract:
    async def test_open_touch_close(self, console_sessions: ConsoleSessionStore) -> None:
        digest, session = a_session()
        other, _ = a_session()
        await console_sessions.open(digest, session, 60)
        assert await console_sessions.touch(digest, 60) == session
        assert await console_sessions.touch(other, 60) is None
        await console_sessions.close(digest)
        assert await console_sessions.touch(digest, 60) is None
        await console_sessions.close(digest)  # closing twice is not an error

    async def test_an_idle_session_expires_and_a_touched_one_does_not(
        self, console_sessions: ConsoleSessionStore
    ) -> None:
        idle, _ = a_session()
        busy, session = a_session()
        await console_sessions.open(idle, session, 2)
        await console_sessions.open(busy, session, 2)
        for _ in range(3):
            await self.wait(console_sessions, 1.1)
            assert await console_sessions.touch(busy, 2) == session
        assert await console_sessions.touch(idle, 2) is None

    async def wait(self, console_sessions: ConsoleSessionStore, seconds: float) -> None:
        await asyncio.sleep(seconds)
