from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.sql.engine import from_db_time, to_db_time, translate_errors
from hermes.adapters.sql.tables import customers
from hermes.application.ports.customers import CustomerDirectory
from hermes.domain.customer import Customer, email_key, email_taken
from hermes.domain.errors import Conflict
from hermes.domain.plan import Plan

_COLUMNS = (
    customers.c.id,
    customers.c.email,
    customers.c.plan,
    customers.c.active,
    customers.c.created_at,
    customers.c.api_key_prefix,
)


def _customer(row: Any) -> Customer:
    return Customer(
        id=row.id,
        email=row.email,
        plan=Plan(row.plan),
        active=bool(row.active),
        created_at=from_db_time(row.created_at),
        api_key_prefix=row.api_key_prefix,
    )


class SqlCustomerDirectory(CustomerDirectory):
    """The `customers` table; keys are found by the SHA-256 digest, never stored raw."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, customer: Customer, api_key_digest: str) -> None:
        key = email_key(customer.email)
        try:
            await self._insert(customer, key, api_key_digest)
        except Conflict:
            if await self._email_in_use(key):
                raise email_taken(customer.email) from None
            raise

    async def _email_in_use(self, key: str) -> bool:
        async with translate_errors(), self._engine.connect() as conn:
            return (await conn.execute(select(customers.c.id).where(customers.c.email_key == key))).first() is not None

    async def _insert(self, customer: Customer, key: str, api_key_digest: str) -> None:
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(
                insert(customers).values(
                    id=customer.id,
                    email=customer.email,
                    email_key=key,
                    plan=customer.plan.value,
                    active=customer.active,
                    api_key_hash=api_key_digest,
                    api_key_prefix=customer.api_key_prefix,
                    created_at=to_db_time(customer.created_at),
                )
            )

    async def get(self, customer_id: str) -> Customer | None:
        async with translate_errors(), self._engine.connect() as conn:
            row = (await conn.execute(select(*_COLUMNS).where(customers.c.id == customer_id))).first()
        return None if row is None else _customer(row)

    async def find_by_key_digest(self, api_key_digest: str) -> tuple[Customer, str] | None:
        query = select(*_COLUMNS, customers.c.api_key_hash).where(customers.c.api_key_hash == api_key_digest)
        async with translate_errors(), self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else (_customer(row), row.api_key_hash)

    async def set_active(self, customer_id: str, active: bool) -> Customer | None:
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(update(customers).where(customers.c.id == customer_id).values(active=active))
            row = (await conn.execute(select(*_COLUMNS).where(customers.c.id == customer_id))).first()
        return None if row is None else _customer(row)

    async def replace_key(self, customer_id: str, api_key_digest: str, prefix: str) -> str | None:
        async with translate_errors(), self._engine.begin() as conn:
            old = (
                await conn.execute(
                    select(customers.c.api_key_hash).where(customers.c.id == customer_id).with_for_update()
                )
            ).scalar()
            if old is None:
                return None
            await conn.execute(
                update(customers)
                .where(customers.c.id == customer_id)
                .values(api_key_hash=api_key_digest, api_key_prefix=prefix)
            )
        return str(old)

    async def list(self, limit: int = 100, after: str | None = None) -> list[Customer]:
        query = select(*_COLUMNS).order_by(customers.c.id).limit(limit)
        if after is not None:
            query = query.where(customers.c.id > after)
        async with translate_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_customer(r) for r in rows]

    async def key_digest(self, customer_id: str) -> str | None:
        async with translate_errors(), self._engine.connect() as conn:
            value = (await conn.execute(select(customers.c.api_key_hash).where(customers.c.id == customer_id))).scalar()
        return None if value is None else str(value)
