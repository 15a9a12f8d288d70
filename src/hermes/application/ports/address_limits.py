"""Counting requests per client address, for endpoints anyone may call without credentials."""

from __future__ import annotations

from typing import Protocol


class AddressLimiter(Protocol):
    """Requests per client address in fixed one-minute windows, shared by every instance that serves the address."""

    async def hit(self, bucket: str, address: str, limit: int) -> float | None:
        """Count one request of `address` in `bucket` this minute; seconds to wait if over `limit`, else None."""
        ...
