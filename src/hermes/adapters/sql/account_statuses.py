"""Account health records in the SQL database (embedded mode), so a restart keeps what Hermes learnt."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.sql.engine import from_db_time, to_db_time, translate_errors
from hermes.adapters.sql.tables import account_statuses
from hermes.application.ports.managed_oauth import AccountStatuses
from hermes.domain.managed_oauth import AccountHealth, AccountStatus
from hermes.domain.platform import Platform

_c = account_statuses.c
_MAX_ERROR = 500  # the column's width


def _values(status: AccountStatus) -> dict[str, Any]:
    return {
        "status": status.status.value,
        "last_checked_at": to_db_time(status.last_checked_at),
        "last_error": status.last_error[:_MAX_ERROR] if status.last_error else None,
        "expires_at": to_db_time(status.expires_at) if status.expires_at else None,
        "connected_at": to_db_time(status.connected_at) if status.connected_at else None,
    }


def _status(row: Any) -> AccountStatus | None:
    try:
        return AccountStatus(
            Platform(row.platform),
            row.account,
            AccountHealth(row.status),
            from_db_time(row.last_checked_at),
            last_error=row.last_error,
            expires_at=from_db_time(row.expires_at) if row.expires_at else None,
            connected_at=from_db_time(row.connected_at) if row.connected_at else None,
        )
    except ValueError:
        return None  # a platform no longer declared, or a status from another version: treat it as gone


class SqlAccountStatuses(AccountStatuses):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @staticmethod
    def _row(customer_id: str, platform: Platform, account: str) -> Any:
        return and_(_c.customer_id == customer_id, _c.platform == platform.value, _c.account == account)

    async def put(self, customer_id: str, status: AccountStatus) -> None:
        values = _values(status)
        where = self._row(customer_id, status.platform, status.account)
        async with translate_errors(), self._engine.begin() as conn:
            changed = await conn.execute(update(account_statuses).where(where).values(**values))
            if changed.rowcount:
                return
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        insert(account_statuses).values(
                            customer_id=customer_id, platform=status.platform.value, account=status.account, **values
                        )
                    )
            except IntegrityError:
                # Written by a concurrent call between the two statements: this record is the later one.
                await conn.execute(update(account_statuses).where(where).values(**values))

    async def get(self, customer_id: str, platform: Platform, account: str) -> AccountStatus | None:
        async with translate_errors(), self._engine.connect() as conn:
            row = (
                await conn.execute(select(account_statuses).where(self._row(customer_id, platform, account)))
            ).first()
        return None if row is None else _status(row)

    async def all(self, customer_id: str) -> list[AccountStatus]:
        async with translate_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(select(account_statuses).where(_c.customer_id == customer_id))).all()
        found = [s for s in map(_status, rows) if s is not None]
        return sorted(found, key=lambda s: (s.platform.value, s.account))

    async def remove(self, customer_id: str, platform: Platform, account: str) -> None:
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(delete(account_statuses).where(self._row(customer_id, platform, account)))
