"""Embedded mode's durable stores in the SQL database: credentials, phone routes, usage, audit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters import account_positions
from hermes.adapters.sql.engine import from_db_time, to_db_time, translate_errors
from hermes.adapters.sql.tables import account_routes, audit_log, credentials, usage
from hermes.application.ports.audit import AuditLog
from hermes.application.ports.credentials import AccountsPage, CredentialStore
from hermes.application.ports.metering import UsageMeter
from hermes.application.ports.routing import AccountRoutes, RouteOwner
from hermes.domain.audit import AuditEntry
from hermes.domain.errors import Unavailable
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT
from hermes.domain.platform import Platform


class SqlCredentialStore(CredentialStore):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def _row(self, customer_id: str, platform: Platform, account: str):  # type: ignore[no-untyped-def]
        return and_(
            credentials.c.customer_id == customer_id,
            credentials.c.platform == platform.value,
            credentials.c.account == account,
        )

    async def put(self, customer_id: str, platform: Platform, envelope: bytes, account: str = DEFAULT_ACCOUNT) -> None:
        async with translate_errors(), self._engine.begin() as conn:
            changed = await conn.execute(
                update(credentials).where(self._row(customer_id, platform, account)).values(envelope=envelope)
            )
            if changed.rowcount == 0:
                await conn.execute(
                    insert(credentials).values(
                        customer_id=customer_id, platform=platform.value, account=account, envelope=envelope
                    )
                )

    async def get(self, customer_id: str, platform: Platform, account: str = DEFAULT_ACCOUNT) -> bytes | None:
        async with translate_errors(), self._engine.connect() as conn:
            value = (
                await conn.execute(select(credentials.c.envelope).where(self._row(customer_id, platform, account)))
            ).scalar()
        return None if value is None else bytes(value)

    async def delete(self, customer_id: str, platform: Platform, account: str = DEFAULT_ACCOUNT) -> bool:
        async with translate_errors(), self._engine.begin() as conn:
            result = await conn.execute(delete(credentials).where(self._row(customer_id, platform, account)))
        return result.rowcount > 0

    async def accounts(self, customer_id: str) -> list[tuple[Platform, str]]:
        async with translate_errors(), self._engine.connect() as conn:
            rows = await conn.execute(
                select(credentials.c.platform, credentials.c.account).where(credentials.c.customer_id == customer_id)
            )
            found = [(Platform(r.platform), r.account) for r in rows]
        return sorted(found, key=lambda a: (a[0].value, a[1]))

    async def present(self, customer_id: str, platforms: Sequence[Platform]) -> list[bool]:
        held = {p for p, _ in await self.accounts(customer_id)}
        return [p in held for p in platforms]

    async def replace_if_unchanged(
        self, customer_id: str, platform: Platform, old: bytes, new: bytes, account: str = DEFAULT_ACCOUNT
    ) -> bool:
        async with translate_errors(), self._engine.begin() as conn:
            result = await conn.execute(
                update(credentials)
                .where(self._row(customer_id, platform, account), credentials.c.envelope == old)
                .values(envelope=new)
            )
        return result.rowcount > 0

    async def scan(self) -> AsyncIterator[tuple[str, Platform, str, bytes]]:
        after = account_positions.START
        while True:
            async with translate_errors(), self._engine.connect() as conn:
                rows = (await conn.execute(_after(select(credentials), after, 500))).all()
            if not rows:
                return
            for row in rows:
                yield row.customer_id, Platform(row.platform), row.account, bytes(row.envelope)
            after = (rows[-1].customer_id, rows[-1].platform, rows[-1].account)

    async def page(self, position: str, size: int) -> AccountsPage:
        c = credentials.c
        size = max(1, size)
        query = _after(select(c.customer_id, c.platform, c.account), account_positions.decode(position), size)
        declared = {p.value for p in Platform}  # a platform no longer declared has nothing to check
        async with translate_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found = [(r.customer_id, r.platform, r.account) for r in rows]
        accounts = [(customer, Platform(p), a) for customer, p, a in found if p in declared]
        return AccountsPage(accounts, account_positions.encode(found[-1]) if len(found) == size else None)


def _after(query: Select[Any], after: account_positions.AccountKey, limit: int) -> Select[Any]:
    """The credentials rows after `after` in key order: a keyset page, as cheap at the end as at the start."""
    c = credentials.c
    customer_id, platform, account = after
    return (
        query.where(
            (c.customer_id > customer_id)
            | and_(c.customer_id == customer_id, c.platform > platform)
            | and_(c.customer_id == customer_id, c.platform == platform, c.account > account)
        )
        .order_by(c.customer_id, c.platform, c.account)
        .limit(limit)
    )


class SqlAccountRoutes(AccountRoutes):
    """One row per route key: the customer and the account name it connected the platform account as."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(self, route_key: str, owner: RouteOwner) -> RouteOwner:
        # The primary key makes the insert the atomic step: one claimant wins, the others read the owner.
        for _ in range(3):
            async with translate_errors():
                try:
                    async with self._engine.begin() as conn:
                        await conn.execute(
                            insert(account_routes).values(
                                route_key=route_key, customer_id=owner.customer_id, account=owner.account
                            )
                        )
                    return owner
                except IntegrityError:
                    pass  # already routed: report the owner
            holder = await self.owner(route_key)
            if holder is not None:
                return holder
            # Released between the insert and the read: try again rather than report a route not stored.
        raise Unavailable("the inbound route could not be stored; try again")

    async def release(self, route_key: str, owner: RouteOwner) -> None:
        r = account_routes.c
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(
                delete(account_routes).where(
                    r.route_key == route_key, r.customer_id == owner.customer_id, r.account == owner.account
                )
            )

    async def owner(self, route_key: str) -> RouteOwner | None:
        r = account_routes.c
        async with translate_errors(), self._engine.connect() as conn:
            row = (await conn.execute(select(r.customer_id, r.account).where(r.route_key == route_key))).first()
        return None if row is None else RouteOwner(str(row[0]), str(row[1]))


class SqlUsageMeter(UsageMeter):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def consume(self, customer_id: str, month: str, limit: int) -> int | None:
        key = and_(usage.c.customer_id == customer_id, usage.c.month == month)
        for _ in range(3):
            async with translate_errors(), self._engine.begin() as conn:
                result = await conn.execute(
                    update(usage).where(key, usage.c.calls < limit).values(calls=usage.c.calls + 1)
                )
                if result.rowcount:
                    return int((await conn.execute(select(usage.c.calls).where(key))).scalar_one())
                if (await conn.execute(select(usage.c.calls).where(key))).first() is not None:
                    return None  # the row exists and is at the limit
            if limit < 1:
                return None
            async with translate_errors():
                try:
                    async with self._engine.begin() as conn:
                        await conn.execute(insert(usage).values(customer_id=customer_id, month=month, calls=1))
                    return 1
                except IntegrityError:
                    continue  # another request created the row first: count against it
        return None

    async def used(self, customer_id: str, month: str) -> int:
        async with translate_errors(), self._engine.connect() as conn:
            value = (
                await conn.execute(
                    select(usage.c.calls).where(usage.c.customer_id == customer_id, usage.c.month == month)
                )
            ).scalar()
        return int(value or 0)


def _audit_row(entry: AuditEntry) -> dict[str, object]:
    return {
        "customer_id": entry.customer_id,
        "day": entry.time.date(),
        "time": to_db_time(entry.time),
        "tool": entry.tool,
        "platform": entry.platform,
        "target": entry.target[:512] if entry.target else None,
        "outcome": entry.outcome,
        "error_code": entry.error_code,
        "duration_ms": entry.duration_ms,
        "account": entry.account,
    }


class SqlAuditLog(AuditLog):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append(self, entry: AuditEntry) -> str:
        async with translate_errors(), self._engine.begin() as conn:
            result = await conn.execute(insert(audit_log).values(**_audit_row(entry)))
        key = result.inserted_primary_key
        assert key is not None  # an INSERT with an autoincrement key always reports it
        return str(key[0])

    async def complete(self, entry_id: str, entry: AuditEntry) -> None:
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(update(audit_log).where(audit_log.c.id == int(entry_id)).values(**_audit_row(entry)))

    async def list(
        self, customer_id: str, day: date, after: int = 0, limit: int = 1000
    ) -> tuple[list[AuditEntry], int | None]:
        query = (
            select(audit_log)
            .where(audit_log.c.customer_id == customer_id, audit_log.c.day == day, audit_log.c.id > after)
            .order_by(audit_log.c.id)
            .limit(limit + 1)  # one more tells whether another page follows
        )
        async with translate_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        entries = [
            AuditEntry(
                r.customer_id,
                from_db_time(r.time),
                r.tool,
                r.platform,
                r.target,
                r.outcome,
                r.error_code,
                r.duration_ms,
                r.account,
            )
            for r in rows
        ]
        return entries, (int(rows[-1].id) if more else None)

    async def purge(self, before: date) -> int:
        """Embedded mode's 90-day retention (Redis expires its keys itself)."""
        async with translate_errors(), self._engine.begin() as conn:
            result = await conn.execute(delete(audit_log).where(audit_log.c.day < before))
        return result.rowcount
