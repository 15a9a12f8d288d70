"""Per-plan limits: requests per minute, tool calls per month."""

from __future__ import annotations

from typing import Protocol


class RateLimiter(Protocol):
    async def hit(self, customer_id: str, limit: int) -> float | None:
        """Count one request in the current minute; seconds to wait if over `limit`, else None."""
        ...


class UsageMeter(Protocol):
    async def consume(self, customer_id: str, month: str, limit: int) -> int | None:
        """Count one tool call against the month's quota; the new count, or None when it is used up."""
        ...

    async def used(self, customer_id: str, month: str) -> int: ...
