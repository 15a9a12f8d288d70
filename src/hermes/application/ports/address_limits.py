"""Counting requests per client address, for endpoints anyone may call without credentials."""

from __future__ import annotations

from typing import Protocol


class AddressLimiter(Protocol):
    """Requests per client address in fixed windows, shared by every instance that serves the address."""

    async def hit(self, bucket: str, address: str, limit: int, window: int = 60) -> float | None:
        """Count one request of `address` in `bucket` in the current `window`-second window.

        Seconds until the window ends if that makes more than `limit`, else None.
        """
        ...
