from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.clock import Clock
from hermes.application.ports.customers import CustomerDirectory
from hermes.domain.customer import ApiKey, Customer, new_customer_id, parse_email, parse_plan


@dataclass(frozen=True, slots=True)
class NewCustomer:
    customer: Customer
    api_key: str


@dataclass(slots=True)
class CreateCustomer:
    """Create a customer on a plan and issue its API key.

    The key is returned once, here; only its SHA-256 digest is stored.
    """

    directory: CustomerDirectory
    clock: Clock

    async def __call__(self, email: object, plan: object) -> NewCustomer:
        parsed_email = parse_email(email)
        parsed_plan = parse_plan(plan)
        key = ApiKey.generate()
        customer = Customer(
            id=new_customer_id(),
            email=parsed_email,
            plan=parsed_plan,
            active=True,
            created_at=self.clock.now(),
            api_key_prefix=key.prefix,
        )
        await self.directory.add(customer, key.digest)
        return NewCustomer(customer, key.secret)
