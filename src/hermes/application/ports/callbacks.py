"""Customer callbacks: where they are kept, and how a signed POST reaches one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from hermes.domain.callbacks import Callback, Delivery

# The deliveries a customer can see: the most recent ones.
KEPT_DELIVERIES = 50


class CallbackStore(Protocol):
    async def put(self, callback: Callback) -> None:
        """Register (or replace) the customer's callback, with its delivery state."""
        ...

    async def get(self, customer_id: str) -> Callback | None: ...

    async def delete(self, customer_id: str) -> bool: ...

    async def advance(
        self,
        customer_id: str,
        registration: str,
        cursor: str | None,
        failures: int,
        next_attempt_at: datetime | None,
    ) -> bool:
        """Save where deliveries stand, unless the callback was replaced or removed meanwhile."""
        ...

    async def replace_secret(self, customer_id: str, old: bytes, new: bytes) -> bool:
        """Swap the sealed signing secret `old` for `new` (key rotation), unless it changed meanwhile."""
        ...

    async def record(self, customer_id: str, delivery: Delivery) -> None:
        """Keep the delivery among the customer's most recent `KEPT_DELIVERIES`."""
        ...

    async def deliveries(self, customer_id: str, limit: int = KEPT_DELIVERIES) -> list[Delivery]:
        """The most recent deliveries, newest first."""
        ...

    async def customers(self) -> list[str]:
        """Every customer with a callback (the periodic sweep's work list)."""
        ...

    async def lease(self, customer_id: str, owner: str, seconds: float) -> bool:
        """Take the right to deliver this customer's callbacks for `seconds`: one instance at a time, in order."""
        ...

    async def unlease(self, customer_id: str, owner: str) -> None: ...


class CallbackSender(Protocol):
    async def check(self, url: str) -> None:
        """`Invalid` when the URL's host is not one Hermes may call (private, loopback, metadata, unresolvable)."""
        ...

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        """POST to the (re-checked) URL; the HTTP status, or `Unavailable` naming why nothing answered."""
        ...
