"""Where the guards on sends keep their state: policies, idempotency keys, recipient counts, held sends."""

from __future__ import annotations

from typing import Protocol

from hermes.domain.sends import IdempotencyRecord, PendingSend, PendingState, SendPolicy


class PolicyStore(Protocol):
    """`policy:{cust}`: one policy per customer (not a secret, stored in clear)."""

    async def get(self, customer_id: str) -> SendPolicy | None: ...

    async def put(self, customer_id: str, policy: SendPolicy) -> None: ...


class IdempotencyKeys(Protocol):
    """`idem:{cust}:{sha256(key)}`, kept `ttl` seconds from the first claim."""

    async def claim(
        self, customer_id: str, key_digest: str, record: IdempotencyRecord, ttl: int
    ) -> IdempotencyRecord | None:
        """Take the key for a new send (None), or the record already under it; atomic across instances."""
        ...

    async def get(self, customer_id: str, key_digest: str) -> IdempotencyRecord | None: ...

    async def settle(self, customer_id: str, key_digest: str, record: IdempotencyRecord) -> None:
        """Store how the send ended, keeping the key's remaining lifetime."""
        ...

    async def release(self, customer_id: str, key_digest: str) -> None:
        """Forget the key: the send was refused before anything went out, so a retry may send."""
        ...


class RecipientLedger(Protocol):
    """Sends per recipient (by digest): hourly counts shared by every instance, and who was ever written to."""

    async def count(self, customer_id: str, recipient_digest: str, limit: int, window: int = 3600) -> float | None:
        """Count one send in the current window; seconds until it ends if that makes more than `limit`
        (and then the send is not counted), else None."""
        ...

    async def known(self, customer_id: str, recipient_digest: str) -> bool: ...

    async def remember(self, customer_id: str, recipient_digest: str) -> None: ...


class PendingSends(Protocol):
    """`approval:{cust}:{id}`: sends held for the owner, kept `ttl` seconds."""

    async def add(self, pending: PendingSend, ttl: int, max_pending: int) -> bool:
        """Keep the held send; False when the customer already has `max_pending` of them waiting."""
        ...

    async def get(self, customer_id: str, approval_id: str) -> PendingSend | None: ...

    async def waiting(self, customer_id: str, limit: int = 100) -> list[PendingSend]:
        """Held sends still in state pending, oldest first."""
        ...

    async def move(self, customer_id: str, approval_id: str, old: PendingState, new: PendingState) -> bool:
        """Change the state from `old` to `new` in one atomic step; False when it was not `old`."""
        ...

    async def customers(self) -> list[str]:
        """Customers that may have sends waiting (the expiry sweep's work list; may hold a few extra)."""
        ...

    async def forget(self, customer_id: str) -> None:
        """Drop the customer from the work list once nothing of theirs waits."""
        ...
