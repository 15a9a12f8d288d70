"""Console sessions in process memory: embedded mode serves from one process, so this is the whole truth."""

from __future__ import annotations

import time
from collections.abc import Callable

from hermes.application.ports.console import ConsoleSessionStore
from hermes.domain.console import ConsoleSession


class InMemoryConsoleSessionStore(ConsoleSessionStore):
    """Bounded: past `max_sessions`, expired sessions are dropped, then the longest idle ones.

    A restart signs every browser out, which for sessions of minutes costs one sign-in.
    """

    def __init__(self, max_sessions: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_sessions
        self._clock = clock
        self._sessions: dict[str, tuple[ConsoleSession, float]] = {}  # digest -> (session, expires at)

    async def open(self, digest: str, session: ConsoleSession, idle_ttl: int) -> None:
        now = self._clock()
        if len(self._sessions) >= self._max:
            self._sessions = {d: v for d, v in self._sessions.items() if v[1] > now}
            while len(self._sessions) >= self._max:
                del self._sessions[min(self._sessions, key=lambda d: self._sessions[d][1])]
        self._sessions[digest] = (session, now + idle_ttl)

    async def touch(self, digest: str, idle_ttl: int) -> ConsoleSession | None:
        now = self._clock()
        found = self._sessions.get(digest)
        if found is None or found[1] <= now:
            self._sessions.pop(digest, None)
            return None
        self._sessions[digest] = (found[0], now + idle_ttl)
        return found[0]

    async def close(self, digest: str) -> None:
        self._sessions.pop(digest, None)
