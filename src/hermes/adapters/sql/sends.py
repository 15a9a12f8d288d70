"""Embedded mode's send guards in the SQL database (one process serves; the statements stay atomic anyway)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.send_records import (
    decode_pending,
    decode_policy,
    decode_record,
    encode_pending,
    encode_policy,
    encode_record,
)
from hermes.adapters.sql.engine import to_db_time, translate_errors
from hermes.adapters.sql.tables import (
    idempotency_keys,
    known_recipients,
    pending_sends,
    recipient_counts,
    send_policies,
)
from hermes.application.ports.sends import IdempotencyKeys, PendingSends, PolicyStore, RecipientLedger
from hermes.domain.errors import Unavailable
from hermes.domain.sends import IdempotencyRecord, PendingSend, PendingState, SendPolicy


def _now() -> datetime:
    return to_db_time(datetime.now(UTC))


class SqlPolicyStore(PolicyStore):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, customer_id: str) -> SendPolicy | None:
        async with translate_errors(), self._engine.connect() as conn:
            raw = (
                await conn.execute(select(send_policies.c.record).where(send_policies.c.customer_id == customer_id))
            ).scalar()
        return None if raw is None else decode_policy(bytes(raw))

    async def put(self, customer_id: str, policy: SendPolicy) -> None:
        record = encode_policy(policy)
        async with translate_errors():
            for _ in range(3):
                try:
                    async with self._engine.begin() as conn:
                        where = send_policies.c.customer_id == customer_id
                        changed = await conn.execute(update(send_policies).where(where).values(record=record))
                        if changed.rowcount == 0:
                            await conn.execute(insert(send_policies).values(customer_id=customer_id, record=record))
                    return
                except IntegrityError:
                    continue  # written concurrently: update it instead


class SqlIdempotencyKeys(IdempotencyKeys):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @staticmethod
    def _row(customer_id: str, key_digest: str):  # type: ignore[no-untyped-def]
        return and_(idempotency_keys.c.customer_id == customer_id, idempotency_keys.c.key_digest == key_digest)

    async def claim(
        self, customer_id: str, key_digest: str, record: IdempotencyRecord, ttl: int
    ) -> IdempotencyRecord | None:
        row = self._row(customer_id, key_digest)
        for attempt in range(5):
            try:
                async with translate_errors():
                    # A key past its day is gone, as it would be in Redis.
                    async with self._engine.begin() as conn:
                        await conn.execute(delete(idempotency_keys).where(row, idempotency_keys.c.expires_at <= _now()))
                    try:
                        async with self._engine.begin() as conn:
                            await conn.execute(
                                insert(idempotency_keys).values(
                                    customer_id=customer_id,
                                    key_digest=key_digest,
                                    record=encode_record(record),
                                    expires_at=_now() + timedelta(seconds=ttl),
                                )
                            )
                        return None
                    except IntegrityError:
                        earlier = await self.get(customer_id, key_digest)
                        if earlier is not None:
                            return earlier
            except Unavailable:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))  # a deadlock the database broke: claim again
        return await self.get(customer_id, key_digest)

    async def get(self, customer_id: str, key_digest: str) -> IdempotencyRecord | None:
        query = select(idempotency_keys.c.record).where(
            self._row(customer_id, key_digest), idempotency_keys.c.expires_at > _now()
        )
        async with translate_errors(), self._engine.connect() as conn:
            raw = (await conn.execute(query)).scalar()
        return None if raw is None else decode_record(bytes(raw))

    async def settle(self, customer_id: str, key_digest: str, record: IdempotencyRecord) -> None:
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(
                update(idempotency_keys).where(self._row(customer_id, key_digest)).values(record=encode_record(record))
            )

    async def release(self, customer_id: str, key_digest: str) -> None:
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(delete(idempotency_keys).where(self._row(customer_id, key_digest)))


class SqlRecipientLedger(RecipientLedger):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def count(self, customer_id: str, recipient_digest: str, limit: int, window: int = 3600) -> float | None:
        now = time.time()
        period = int(now // window)
        over = max(1.0, (period + 1) * window - now)
        row = and_(
            recipient_counts.c.customer_id == customer_id,
            recipient_counts.c.recipient == recipient_digest,
            recipient_counts.c.period == period,
        )
        for attempt in range(5):
            try:
                # Single statements, each its own transaction: nothing for two counts to deadlock on.
                async with translate_errors():
                    try:
                        async with self._engine.begin() as conn:
                            await conn.execute(
                                insert(recipient_counts).values(
                                    customer_id=customer_id, recipient=recipient_digest, period=period, sends=1
                                )
                            )
                    except IntegrityError:
                        async with self._engine.begin() as conn:
                            # The guard is in the UPDATE itself: a count at the limit is never raised.
                            bumped = await conn.execute(
                                update(recipient_counts)
                                .where(row, recipient_counts.c.sends < limit)
                                .values(sends=recipient_counts.c.sends + 1)
                            )
                        return None if bumped.rowcount else over
                    async with self._engine.begin() as conn:
                        await conn.execute(
                            delete(recipient_counts).where(
                                recipient_counts.c.customer_id == customer_id, recipient_counts.c.period < period
                            )
                        )
                return None
            except Unavailable:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))  # a deadlock the database broke: count again
        return over

    async def known(self, customer_id: str, recipient_digest: str) -> bool:
        query = select(known_recipients.c.recipient).where(
            known_recipients.c.customer_id == customer_id, known_recipients.c.recipient == recipient_digest
        )
        async with translate_errors(), self._engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def remember(self, customer_id: str, recipient_digest: str) -> None:
        if await self.known(customer_id, recipient_digest):
            return
        async with translate_errors():
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(
                        insert(known_recipients).values(customer_id=customer_id, recipient=recipient_digest)
                    )
            except IntegrityError:
                return  # remembered concurrently


class SqlPendingSends(PendingSends):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @staticmethod
    def _row(customer_id: str, approval_id: str):  # type: ignore[no-untyped-def]
        return and_(pending_sends.c.customer_id == customer_id, pending_sends.c.id == approval_id)

    async def add(self, pending: PendingSend, ttl: int, max_pending: int) -> bool:
        now = _now()
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(delete(pending_sends).where(pending_sends.c.keep_until <= now))
            waiting = (
                await conn.execute(
                    select(pending_sends.c.id)
                    .where(
                        pending_sends.c.customer_id == pending.customer_id,
                        pending_sends.c.state == PendingState.PENDING.value,
                    )
                    .limit(max_pending)
                )
            ).all()
            if len(waiting) >= max_pending:
                return False
            await conn.execute(
                insert(pending_sends).values(
                    customer_id=pending.customer_id,
                    id=pending.id,
                    state=pending.state.value,
                    record=encode_pending(pending),
                    requested_at=to_db_time(pending.requested_at),
                    keep_until=now + timedelta(seconds=ttl),
                )
            )
        return True

    async def get(self, customer_id: str, approval_id: str) -> PendingSend | None:
        query = select(pending_sends.c.state, pending_sends.c.record).where(
            self._row(customer_id, approval_id), pending_sends.c.keep_until > _now()
        )
        async with translate_errors(), self._engine.connect() as conn:
            found = (await conn.execute(query)).first()
        return None if found is None else decode_pending(customer_id, approval_id, found.state, bytes(found.record))

    async def waiting(self, customer_id: str, limit: int = 100) -> list[PendingSend]:
        query = (
            select(pending_sends.c.id, pending_sends.c.state, pending_sends.c.record)
            .where(
                pending_sends.c.customer_id == customer_id,
                pending_sends.c.state == PendingState.PENDING.value,
                pending_sends.c.keep_until > _now(),
            )
            .order_by(pending_sends.c.requested_at)
            .limit(limit)
        )
        async with translate_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [decode_pending(customer_id, r.id, r.state, bytes(r.record)) for r in rows]

    async def move(self, customer_id: str, approval_id: str, old: PendingState, new: PendingState) -> bool:
        async with translate_errors(), self._engine.begin() as conn:
            moved = await conn.execute(
                update(pending_sends)
                .where(self._row(customer_id, approval_id), pending_sends.c.state == old.value)
                .values(state=new.value)
            )
        return bool(moved.rowcount)

    async def customers(self) -> list[str]:
        query = (
            select(pending_sends.c.customer_id)
            .where(pending_sends.c.state == PendingState.PENDING.value)
            .distinct()
            .order_by(pending_sends.c.customer_id)
        )
        async with translate_errors(), self._engine.connect() as conn:
            return [r.customer_id for r in await conn.execute(query)]

    async def forget(self, customer_id: str) -> None:
        return None  # the work list is a query over the held sends themselves
