from __future__ import annotations

import time
from collections import OrderedDict

from hermes.application.ports.address_limits import AddressLimiter


class InMemoryAddressLimiter(AddressLimiter):
    """One process's counters (embedded mode serves from one process), bounded in memory.

    Past `max_counters` the counters least recently started are dropped: a caller
    with that many addresses gains little from a reset, and the table cannot grow
    without end.
    """

    def __init__(self, max_counters: int = 100_000) -> None:
        self._max = max_counters
        self._counts: OrderedDict[tuple[str, str, int], tuple[int, int]] = OrderedDict()

    async def hit(self, bucket: str, address: str, limit: int, window: int = 60) -> float | None:
        now = time.time()
        number = int(now // window)
        key = (bucket, address, window)
        held, count = self._counts.get(key, (number, 0))
        if held != number:
            count = 0
        if count == 0:
            self._counts.pop(key, None)
        self._counts[key] = (number, count + 1)
        while len(self._counts) > self._max:
            self._counts.popitem(last=False)
        if count + 1 > limit:
            return max(1.0, (number + 1) * window - now)
        return None
