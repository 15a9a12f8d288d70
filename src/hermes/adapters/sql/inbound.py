"""Embedded mode's inbound stores in the SQL database: queue, dead letters, inboxes, unrouted counts, callbacks.

The queue gives the Redis Stream's guarantees with a lease per row: taking an event
sets `available_at` to now + `reclaim_after` and counts the delivery, so an event
whose consumer crashed (or failed it) is handed out again once the lease runs out;
acknowledging deletes the row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.inbox_records import decode_entry, encode_item
from hermes.adapters.sql.engine import from_db_time, to_db_time, translate_errors
from hermes.adapters.sql.tables import (
    callback_deliveries,
    inbound_callbacks,
    inbound_dead_letters,
    inbound_queue,
    inbox,
    inbox_seen,
    unrouted_numbers,
)
from hermes.application.ports.callbacks import KEPT_DELIVERIES, CallbackStore
from hermes.application.ports.inbound import (
    MAX_DELIVERIES,
    DeadLetter,
    InboundQueue,
    Inbox,
    QueuedEvent,
    UnroutedNumbers,
)
from hermes.application.ports.queue_stats import QueueStats
from hermes.domain.callbacks import Callback, Delivery
from hermes.domain.errors import Conflict
from hermes.domain.inbound import DEDUPE_WINDOW_SECONDS, INBOX_RETENTION_SECONDS, InboxEntry, InboxItem
from hermes.domain.platform import Platform

_POLL = 0.25


def _now() -> datetime:
    return datetime.now(UTC)


def _db_now() -> datetime:
    return to_db_time(_now())


def _inserted_id(result: Any) -> str:
    key = result.inserted_primary_key
    assert key is not None
    return str(key[0])


class SqlInboundQueue(InboundQueue):
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        name: str = "inbound",
        reclaim_after: float = 30.0,
        max_deliveries: int = MAX_DELIVERIES,
    ) -> None:
        self._engine = engine
        self._name = name
        self._lease = timedelta(seconds=reclaim_after)
        self._max_deliveries = max_deliveries
        self._arrived = asyncio.Event()

    async def put(self, platform: Platform, body: bytes) -> str:
        now = _db_now()
        async with translate_errors(), self._engine.begin() as conn:
            result = await conn.execute(
                insert(inbound_queue).values(
                    queue=self._name,
                    platform=platform.value,
                    body=body,
                    received_at=now,
                    deliveries=0,
                    available_at=now,
                )
            )
        self._arrived.set()  # a consumer in this process picks it up without waiting for its next poll
        return _inserted_id(result)

    async def take(self, consumer: str, limit: int, wait: float) -> list[QueuedEvent]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            self._arrived.clear()
            taken, contended = await self._take(consumer, limit)
            remaining = deadline - loop.time()
            if taken or remaining <= 0:
                return taken
            if contended:
                continue  # other consumers took what this one saw: look again at once
            try:
                async with asyncio.timeout(min(_POLL, remaining)):
                    await self._arrived.wait()
            except TimeoutError:
                pass

    async def _take(self, consumer: str, limit: int) -> tuple[list[QueuedEvent], bool]:
        q = inbound_queue.c
        now = _db_now()
        taken: list[QueuedEvent] = []
        contended = False
        # READ COMMITTED: no gap locks, so concurrent consumers skip each other's rows and find the rest.
        options = {} if self._engine.dialect.name == "sqlite" else {"isolation_level": "READ COMMITTED"}
        async with translate_errors(), self._engine.connect() as base:
            conn = await base.execution_options(**options)
            await conn.begin()
            rows = (
                await conn.execute(
                    select(q.id, q.platform, q.body, q.received_at, q.deliveries, q.error)
                    .where(q.queue == self._name, q.available_at <= now)
                    .order_by(q.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)  # MariaDB: consumers lock different rows
                )
            ).all()
            for row in rows:
                # Conditional: of two consumers that read the same row, one moves it.
                claimed = await conn.execute(
                    update(inbound_queue)
                    .where(q.id == row.id, q.deliveries == row.deliveries, q.available_at <= now)
                    .values(deliveries=row.deliveries + 1, available_at=now + self._lease, owner=consumer)
                )
                if claimed.rowcount != 1:
                    contended = True
                    continue
                event = QueuedEvent(
                    str(row.id),
                    Platform(row.platform),
                    bytes(row.body),
                    from_db_time(row.received_at),
                    row.deliveries + 1,
                )
                if event.deliveries > self._max_deliveries:
                    reason = row.error or "delivered too often without being acknowledged"
                    await self._bury(conn, event, reason, row.deliveries)
                else:
                    taken.append(event)
            await conn.commit()
        return taken, contended

    async def ack(self, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(delete(inbound_queue).where(inbound_queue.c.id.in_([int(i) for i in event_ids])))

    async def fail(self, event: QueuedEvent, reason: str) -> None:
        # The lease runs on: the event is handed out again once it expires.
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(
                update(inbound_queue).where(inbound_queue.c.id == int(event.id)).values(error=reason[:1000])
            )

    async def dead_letter(self, event: QueuedEvent, reason: str) -> None:
        async with translate_errors(), self._engine.begin() as conn:
            await self._bury(conn, event, reason, event.deliveries)

    async def _bury(self, conn: Any, event: QueuedEvent, reason: str, deliveries: int) -> None:
        await conn.execute(
            insert(inbound_dead_letters).values(
                queue=self._name,
                event_id=event.id,
                platform=event.platform.value,
                body=event.body,
                received_at=to_db_time(event.received_at),
                failed_at=_db_now(),
                deliveries=deliveries,
                reason=reason[:1000],
            )
        )
        await conn.execute(delete(inbound_queue).where(inbound_queue.c.id == int(event.id)))

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        d = inbound_dead_letters.c
        async with translate_errors(), self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(inbound_dead_letters).where(d.queue == self._name).order_by(d.id).limit(limit)
                )
            ).all()
        return [
            DeadLetter(
                id=str(r.id),
                event_id=r.event_id,
                platform=Platform(r.platform),
                body=bytes(r.body),
                received_at=from_db_time(r.received_at),
                failed_at=from_db_time(r.failed_at),
                deliveries=r.deliveries,
                reason=r.reason,
            )
            for r in rows
        ]

    async def stats(self) -> QueueStats:
        q, d = inbound_queue.c, inbound_dead_letters.c
        async with translate_errors(), self._engine.connect() as conn:
            depth, oldest = (
                await conn.execute(select(func.count(), func.min(q.received_at)).where(q.queue == self._name))
            ).one()
            dead = (await conn.execute(select(func.count()).where(d.queue == self._name))).scalar_one()
        age = 0.0 if oldest is None else max(0.0, (_now() - from_db_time(oldest)).total_seconds())
        return QueueStats(int(depth), age, int(dead))

    async def replay(self, dead_letter_ids: Sequence[str] | None = None) -> int:
        d = inbound_dead_letters.c
        replayed = 0
        while True:
            query = select(inbound_dead_letters).where(d.queue == self._name).order_by(d.id).limit(500)
            if dead_letter_ids is not None:
                wanted = [int(i) for i in dead_letter_ids if i.isdigit()]
                query = query.where(d.id.in_(wanted))
            async with translate_errors(), self._engine.begin() as conn:
                rows = (await conn.execute(query)).all()
                now = _db_now()
                for r in rows:
                    await conn.execute(
                        insert(inbound_queue).values(
                            queue=self._name,
                            platform=r.platform,
                            body=r.body,
                            received_at=r.received_at,
                            deliveries=0,
                            available_at=now,
                        )
                    )
                    await conn.execute(delete(inbound_dead_letters).where(d.id == r.id))
            replayed += len(rows)
            if rows:
                self._arrived.set()
            if dead_letter_ids is not None or len(rows) < 500:
                return replayed


class SqlInbox(Inbox):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append(self, customer_id: str, items: Sequence[InboxItem], now: datetime) -> list[InboxEntry]:
        if not items:
            return []
        for _ in range(5):
            try:
                return await self._append(customer_id, items, now)
            except Conflict:
                continue  # a concurrent append marked one of these first: look again
        raise Conflict("the inbox is being appended to concurrently; try again")

    async def _append(self, customer_id: str, items: Sequence[InboxItem], now: datetime) -> list[InboxEntry]:
        s = inbox_seen.c
        db_now = to_db_time(now)
        keys = list(dict.fromkeys(i.dedupe_key for i in items))
        fresh: list[InboxEntry] = []
        async with translate_errors(), self._engine.begin() as conn:
            marks = (
                await conn.execute(
                    select(s.dedupe_key, s.expires_at).where(s.customer_id == customer_id, s.dedupe_key.in_(keys))
                )
            ).all()
            live = {m.dedupe_key for m in marks if m.expires_at > db_now}
            stale = [m.dedupe_key for m in marks if m.expires_at <= db_now]
            if stale:
                await conn.execute(delete(inbox_seen).where(s.customer_id == customer_id, s.dedupe_key.in_(stale)))
            expires = db_now + timedelta(seconds=DEDUPE_WINDOW_SECONDS)
            for item in items:
                if item.dedupe_key in live:
                    continue
                live.add(item.dedupe_key)
                await conn.execute(
                    insert(inbox_seen).values(customer_id=customer_id, dedupe_key=item.dedupe_key, expires_at=expires)
                )
                result = await conn.execute(
                    insert(inbox).values(
                        customer_id=customer_id,
                        platform=item.platform.value,
                        received_at=db_now,
                        record=encode_item(item, now),
                    )
                )
                fresh.append(InboxEntry(_inserted_id(result), now, item))
            # Retention, kept up as the inbox is written: 90 days of entries, dedupe marks while they matter.
            cutoff = db_now - timedelta(seconds=INBOX_RETENTION_SECONDS)
            await conn.execute(delete(inbox).where(inbox.c.customer_id == customer_id, inbox.c.received_at < cutoff))
            await conn.execute(delete(inbox_seen).where(s.customer_id == customer_id, s.expires_at <= db_now))
        return fresh

    async def list(
        self, customer_id: str, after: str | None, limit: int, platform: Platform | None = None
    ) -> tuple[list[InboxEntry], str | None]:
        i = inbox.c
        query = select(i.id, i.record).where(i.customer_id == customer_id).order_by(i.id).limit(limit)
        if after:
            query = query.where(i.id > int(after.split("-")[0]))
        if platform is not None:
            query = query.where(i.platform == platform.value)
        async with translate_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        entries = [decode_entry(str(r.id), bytes(r.record)) for r in rows]
        return entries, entries[-1].id if entries else None

    async def tail(self, customer_id: str) -> str | None:
        async with translate_errors(), self._engine.connect() as conn:
            newest = (
                await conn.execute(select(func.max(inbox.c.id)).where(inbox.c.customer_id == customer_id))
            ).scalar()
        return None if newest is None else str(newest)


class SqlUnroutedNumbers(UnroutedNumbers):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, platform: Platform, business_id: str, items: int, now: datetime) -> None:
        u = unrouted_numbers.c
        key = and_(u.platform == platform.value, u.business_id == business_id)
        for _ in range(3):
            try:
                async with translate_errors(), self._engine.begin() as conn:
                    changed = await conn.execute(
                        update(unrouted_numbers).where(key).values(dropped=u.dropped + items, last_seen=to_db_time(now))
                    )
                    if changed.rowcount == 0:
                        await conn.execute(
                            insert(unrouted_numbers).values(
                                platform=platform.value,
                                business_id=business_id,
                                dropped=items,
                                last_seen=to_db_time(now),
                            )
                        )
                return
            except Conflict:
                continue  # another instance inserted the row first: add to it

    async def counts(self) -> list[tuple[Platform, str, int, datetime]]:
        u = unrouted_numbers.c
        async with translate_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(select(unrouted_numbers).order_by(u.platform, u.business_id))).all()
        return [(Platform(r.platform), r.business_id, int(r.dropped), from_db_time(r.last_seen)) for r in rows]


class SqlCallbackStore(CallbackStore):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def put(self, callback: Callback) -> None:
        c = inbound_callbacks.c
        values = {
            "url": callback.url,
            "secret": callback.secret_envelope,
            "registration": callback.registration,
            "created_at": to_db_time(callback.created_at),
            "cursor": callback.cursor,
            "failures": callback.failures,
            "next_attempt_at": to_db_time(callback.next_attempt_at) if callback.next_attempt_at else None,
        }
        async with translate_errors(), self._engine.begin() as conn:
            changed = await conn.execute(
                update(inbound_callbacks).where(c.customer_id == callback.customer_id).values(**values)
            )
            if changed.rowcount == 0:
                await conn.execute(insert(inbound_callbacks).values(customer_id=callback.customer_id, **values))

    async def replace_secret(self, customer_id: str, old: bytes, new: bytes) -> bool:
        c = inbound_callbacks.c
        async with translate_errors(), self._engine.begin() as conn:
            changed = await conn.execute(
                update(inbound_callbacks).where(c.customer_id == customer_id, c.secret == old).values(secret=new)
            )
        return changed.rowcount > 0

    async def get(self, customer_id: str) -> Callback | None:
        c = inbound_callbacks.c
        async with translate_errors(), self._engine.connect() as conn:
            r = (await conn.execute(select(inbound_callbacks).where(c.customer_id == customer_id))).first()
        if r is None:
            return None
        return Callback(
            customer_id=r.customer_id,
            url=r.url,
            secret_envelope=bytes(r.secret),
            registration=r.registration,
            created_at=from_db_time(r.created_at),
            cursor=r.cursor,
            failures=r.failures,
            next_attempt_at=from_db_time(r.next_attempt_at) if r.next_attempt_at else None,
        )

    async def delete(self, customer_id: str) -> bool:
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(delete(callback_deliveries).where(callback_deliveries.c.customer_id == customer_id))
            result = await conn.execute(delete(inbound_callbacks).where(inbound_callbacks.c.customer_id == customer_id))
        return result.rowcount > 0

    async def advance(
        self,
        customer_id: str,
        registration: str,
        cursor: str | None,
        failures: int,
        next_attempt_at: datetime | None,
    ) -> bool:
        c = inbound_callbacks.c
        async with translate_errors(), self._engine.begin() as conn:
            result = await conn.execute(
                update(inbound_callbacks)
                .where(c.customer_id == customer_id, c.registration == registration)
                .values(
                    cursor=cursor,
                    failures=failures,
                    next_attempt_at=to_db_time(next_attempt_at) if next_attempt_at else None,
                )
            )
        return result.rowcount > 0

    async def record(self, customer_id: str, delivery: Delivery) -> None:
        d = callback_deliveries.c
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(
                insert(callback_deliveries).values(
                    customer_id=customer_id,
                    at=to_db_time(delivery.at),
                    entry_id=delivery.entry_id,
                    message_id=delivery.message_id[:512],
                    attempt=delivery.attempt,
                    outcome=delivery.outcome,
                    status=delivery.status,
                    error=delivery.error[:1000] if delivery.error else None,
                    duration_ms=delivery.duration_ms,
                )
            )
            oldest_kept = (
                await conn.execute(
                    select(d.id).where(d.customer_id == customer_id).order_by(d.id.desc()).offset(KEPT_DELIVERIES - 1)
                )
            ).first()
            if oldest_kept is not None:
                await conn.execute(
                    delete(callback_deliveries).where(d.customer_id == customer_id, d.id < oldest_kept.id)
                )

    async def deliveries(self, customer_id: str, limit: int = KEPT_DELIVERIES) -> list[Delivery]:
        d = callback_deliveries.c
        async with translate_errors(), self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(callback_deliveries).where(d.customer_id == customer_id).order_by(d.id.desc()).limit(limit)
                )
            ).all()
        return [
            Delivery(
                from_db_time(r.at), r.entry_id, r.message_id, r.attempt, r.outcome, r.status, r.error, r.duration_ms
            )
            for r in rows
        ]

    async def customers(self) -> list[str]:
        async with translate_errors(), self._engine.connect() as conn:
            rows = await conn.execute(select(inbound_callbacks.c.customer_id).order_by(inbound_callbacks.c.customer_id))
            return [r.customer_id for r in rows]

    async def lease(self, customer_id: str, owner: str, seconds: float) -> bool:
        c = inbound_callbacks.c
        now = _db_now()
        async with translate_errors(), self._engine.begin() as conn:
            result = await conn.execute(
                update(inbound_callbacks)
                .where(c.customer_id == customer_id, (c.lease_until.is_(None)) | (c.lease_until < now))
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
            )
        return result.rowcount > 0

    async def unlease(self, customer_id: str, owner: str) -> None:
        c = inbound_callbacks.c
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(
                update(inbound_callbacks)
                .where(c.customer_id == customer_id, c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )
