"""Polled accounts in the SQL database (embedded mode): one row per (customer, account) is registry, lease and state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.sql.engine import from_db_time, to_db_time, translate_errors
from hermes.adapters.sql.tables import mailboxes
from hermes.application.ports.mailboxes import Mailboxes, MailboxState, PolledAccount

_c = mailboxes.c


def _is(account: PolledAccount) -> ColumnElement[bool]:
    return and_(_c.customer_id == account.customer_id, _c.account == account.account)


def _now() -> datetime:
    return to_db_time(datetime.now(UTC))


class SqlMailboxes(Mailboxes):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, account: PolledAccount) -> None:
        fresh = {"uidvalidity": None, "last_uid": 0, "failures": 0}
        async with translate_errors(), self._engine.begin() as conn:
            changed = await conn.execute(update(mailboxes).where(_is(account)).values(**fresh))
            if changed.rowcount == 0:
                try:
                    async with conn.begin_nested():
                        await conn.execute(
                            insert(mailboxes).values(customer_id=account.customer_id, account=account.account, **fresh)
                        )
                except IntegrityError:
                    pass  # added meanwhile: it is there, as asked

    async def remove(self, account: PolledAccount) -> None:
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(delete(mailboxes).where(_is(account)))

    async def members(self) -> list[PolledAccount]:
        async with translate_errors(), self._engine.connect() as conn:
            rows = await conn.execute(select(_c.customer_id, _c.account).order_by(_c.customer_id, _c.account))
        return [PolledAccount(str(r[0]), str(r[1])) for r in rows]

    async def lease(self, account: PolledAccount, holder: str, seconds: float) -> float:
        now = _now()
        free = or_(_c.lease_holder.is_(None), _c.lease_until <= now, _c.lease_holder == holder)
        async with translate_errors(), self._engine.begin() as conn:
            taken = await conn.execute(
                update(mailboxes)
                .where(_is(account), free)
                .values(lease_holder=holder, lease_until=now + timedelta(seconds=seconds))
            )
            if taken.rowcount == 1:
                return 0.0
            until = (await conn.execute(select(_c.lease_until).where(_is(account)))).scalar()
            if until is None:
                # No row: an account polled without a registration (the single-user one) gets one now.
                try:
                    async with conn.begin_nested():
                        await conn.execute(
                            insert(mailboxes).values(
                                customer_id=account.customer_id,
                                account=account.account,
                                lease_holder=holder,
                                lease_until=now + timedelta(seconds=seconds),
                                last_uid=0,
                                failures=0,
                            )
                        )
                except IntegrityError:
                    return seconds  # another instance created it, and holds it, this very moment
                return 0.0
        return max((from_db_time(until) - from_db_time(now)).total_seconds(), 0.001)

    async def hold(self, account: PolledAccount, holder: str, seconds: float) -> bool:
        now = _now()
        free = or_(_c.lease_holder.is_(None), _c.lease_until <= now, _c.lease_holder == holder)
        async with translate_errors(), self._engine.begin() as conn:
            held = await conn.execute(
                update(mailboxes)
                .where(_is(account), free)
                .values(lease_holder=holder, lease_until=now + timedelta(seconds=seconds))
            )
        return held.rowcount == 1

    async def release(self, account: PolledAccount, holder: str) -> None:
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(
                update(mailboxes)
                .where(_is(account), _c.lease_holder == holder)
                .values(lease_holder=None, lease_until=None)
            )

    async def state(self, account: PolledAccount) -> MailboxState:
        async with translate_errors(), self._engine.connect() as conn:
            row = (await conn.execute(select(_c.uidvalidity, _c.last_uid, _c.failures).where(_is(account)))).first()
        if row is None:
            return MailboxState()
        return MailboxState(None if row[0] is None else int(row[0]), int(row[1]), int(row[2]))

    async def save(self, account: PolledAccount, state: MailboxState) -> None:
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(
                update(mailboxes)
                .where(_is(account))
                .values(uidvalidity=state.uidvalidity, last_uid=state.last_uid, failures=state.failures)
            )
