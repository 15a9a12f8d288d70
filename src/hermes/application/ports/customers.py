"""Where customers live: the directory (source of truth) and a short-lived cache of key lookups."""

from __future__ import annotations

from typing import Protocol

from hermes.domain.customer import Customer


class CustomerDirectory(Protocol):
    async def add(self, customer: Customer, api_key_digest: str) -> None: ...

    async def get(self, customer_id: str) -> Customer | None: ...

    async def find_by_key_digest(self, api_key_digest: str) -> tuple[Customer, str] | None:
        """The customer holding this key and the stored digest (compared again in constant time)."""
        ...

    async def set_active(self, customer_id: str, active: bool) -> Customer | None: ...

    async def replace_key(self, customer_id: str, api_key_digest: str, prefix: str) -> str | None:
        """Store a new key digest; returns the old digest (None if the customer is unknown)."""
        ...

    async def list(self, limit: int = 100, after: str | None = None) -> list[Customer]: ...

    async def key_digest(self, customer_id: str) -> str | None: ...


class CustomerCache(Protocol):
    """`customer:apikey:{digest}` for 60 s.

    A lookup that missed reads the key's generation before asking the directory and hands it
    to `put`: an eviction in between (deactivation, key rotation) changes the generation, and
    the answer the directory gave before it is then never written back.
    """

    async def get(self, api_key_digest: str) -> Customer | None: ...

    async def generation(self, api_key_digest: str) -> str:
        """Changes with every eviction of this key; read it before asking the directory."""
        ...

    async def put(self, api_key_digest: str, customer: Customer, generation: str) -> bool:
        """Cache the customer unless the key was evicted since `generation` was read; whether it was."""
        ...

    async def evict(self, api_key_digest: str) -> None: ...
