from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.customers import CustomerDirectory
from hermes.domain.customer import Customer
from hermes.domain.errors import Invalid, NotFound


@dataclass(slots=True)
class GetCustomer:
    """One customer, as an operator sees it (never its key)."""

    directory: CustomerDirectory

    async def __call__(self, customer_id: str) -> Customer:
        customer = await self.directory.get(customer_id)
        if customer is None:
            raise NotFound(f"no customer {customer_id!r}")
        return customer


@dataclass(slots=True)
class ListCustomers:
    """Customers in id order, a page at a time."""

    directory: CustomerDirectory

    async def __call__(self, limit: int = 100, after: str | None = None) -> list[Customer]:
        if not 1 <= limit <= 1000:
            raise Invalid("limit must be between 1 and 1000", {"limit": "must be between 1 and 1000"})
        return await self.directory.list(limit, after)
