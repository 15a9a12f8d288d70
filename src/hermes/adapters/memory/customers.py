"""In-memory customer directory and cache, for unit tests."""

from __future__ import annotations

import time
from dataclasses import replace

from hermes.application.ports.customers import CustomerCache, CustomerDirectory
from hermes.domain.customer import Customer, email_key, email_taken
from hermes.domain.errors import Conflict


class InMemoryCustomerDirectory(CustomerDirectory):
    def __init__(self) -> None:
        self.customers: dict[str, Customer] = {}
        self.digests: dict[str, str] = {}  # customer id -> key digest
        self.lookups = 0  # how often the "database" was asked for a key, for cache tests

    async def add(self, customer: Customer, api_key_digest: str) -> None:
        if customer.id in self.customers or api_key_digest in self.digests.values():
            raise Conflict("customer already exists")
        if any(email_key(c.email) == email_key(customer.email) for c in self.customers.values()):
            raise email_taken(customer.email)
        self.customers[customer.id] = customer
        self.digests[customer.id] = api_key_digest

    async def get(self, customer_id: str) -> Customer | None:
        return self.customers.get(customer_id)

    async def find_by_key_digest(self, api_key_digest: str) -> tuple[Customer, str] | None:
        self.lookups += 1
        for customer_id, digest in self.digests.items():
            if digest == api_key_digest:
                return self.customers[customer_id], digest
        return None

    async def set_active(self, customer_id: str, active: bool) -> Customer | None:
        customer = self.customers.get(customer_id)
        if customer is None:
            return None
        self.customers[customer_id] = updated = replace(customer, active=active)
        return updated

    async def replace_key(self, customer_id: str, api_key_digest: str, prefix: str) -> str | None:
        if customer_id not in self.customers:
            return None
        old = self.digests[customer_id]
        self.digests[customer_id] = api_key_digest
        self.customers[customer_id] = replace(self.customers[customer_id], api_key_prefix=prefix)
        return old

    async def list(self, limit: int = 100, after: str | None = None) -> list[Customer]:
        ids = sorted(i for i in self.customers if after is None or i > after)
        return [self.customers[i] for i in ids[:limit]]

    async def key_digest(self, customer_id: str) -> str | None:
        return self.digests.get(customer_id)


class InMemoryCustomerCache(CustomerCache):
    """Process-local cache with the same 60 s expiry as Redis (embedded mode, unit tests)."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self.entries: dict[str, tuple[float, Customer]] = {}
        self.evictions: dict[str, int] = {}

    async def get(self, api_key_digest: str) -> Customer | None:
        found = self.entries.get(api_key_digest)
        if found is None:
            return None
        if found[0] < time.monotonic():
            del self.entries[api_key_digest]
            return None
        return found[1]

    async def generation(self, api_key_digest: str) -> str:
        return str(self.evictions.get(api_key_digest, 0))

    async def put(self, api_key_digest: str, customer: Customer, generation: str) -> bool:
        if await self.generation(api_key_digest) != generation:
            return False
        if len(self.entries) >= 100_000:
            self.entries.clear()  # bounded: a flood of distinct keys cannot grow the process
        self.entries[api_key_digest] = (time.monotonic() + self.ttl, customer)
        return True

    async def evict(self, api_key_digest: str) -> None:
        self.entries.pop(api_key_digest, None)
        self.evictions[api_key_digest] = self.evictions.get(api_key_digest, 0) + 1
