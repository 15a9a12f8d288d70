from __future__ import annotations

import time

from hermes.application.ports.address_limits import AddressLimiter


class InMemoryAddressLimiter(AddressLimiter):
    """One process's counters (embedded mode serves from one process), bounded in memory.

    Only the current minute is kept. Past `max_addresses` distinct addresses in one
    minute the oldest counters are dropped: a caller with that many addresses gains
    little from a reset, and the table cannot grow without end.
    """

    def __init__(self, max_addresses: int = 100_000) -> None:
        self._max = max_addresses
        self._window = 0
        self._counts: dict[tuple[str, str], int] = {}

    async def hit(self, bucket: str, address: str, limit: int) -> float | None:
        now = time.time()
        window = int(now // 60)
        if window != self._window:
            self._window = window
            self._counts.clear()
        key = (bucket, address)
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        if count == 1 and len(self._counts) > self._max:
            del self._counts[next(iter(self._counts))]
        if count > limit:
            return max(1.0, (window + 1) * 60 - now)
        return None
