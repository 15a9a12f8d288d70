"""How far behind the inbound queue is, for the operator's metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class QueueStats:
    depth: int  # events waiting or being routed
    oldest_age: float  # seconds since the oldest of them arrived; 0 when the queue is empty
    dead_letters: int


class QueueStatistics(Protocol):
    async def stats(self) -> QueueStats: ...
