"""Conversations in the SQL database (embedded mode): a row per conversation, a row per message."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hermes.adapters.conversation_records import (
    decode_message,
    decode_participants,
    encode_message,
    encode_participants,
    from_ms,
    ms,
)
from hermes.adapters.sql.engine import translate_errors
from hermes.adapters.sql.tables import conversation_messages, conversation_receivers, conversations
from hermes.application.ports.conversations import ConversationStore, Position
from hermes.domain.conversations import (
    CONVERSATION_RETENTION_SECONDS,
    IN,
    MAX_MESSAGES_PER_CONVERSATION,
    STATUS_RANK,
    Conversation,
    MessageView,
    Recorded,
    conversation_id,
    preview,
)
from hermes.domain.errors import Conflict
from hermes.domain.platform import Platform

_c = conversations.c
_m = conversation_messages.c


def _head(row: Any) -> Conversation:
    return Conversation(
        id=row.conversation_id,
        platform=Platform(row.platform),
        account=row.account,
        peer=row.peer,
        title=row.title,
        participants=decode_participants(bytes(row.participants)) if row.participants else (),
        last_message_at=from_ms(row.last_at),
        last_message_preview=row.preview,
        unread_count=row.unread,
        last_inbound_at=from_ms(row.last_inbound_at) if row.last_inbound_at is not None else None,
    )


class SqlConversationStore(ConversationStore):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, customer_id: str, records: Sequence[Recorded], now: datetime) -> int:
        added = 0
        for r in records:
            for _ in range(5):
                try:
                    added += await self._record(customer_id, r)
                    break
                except Conflict:
                    # The message is there already, or a concurrent first message made the conversation: look again.
                    if await self._has(customer_id, r.key.id, r.message.message_id):
                        break
            else:
                raise Conflict("the conversation is being written concurrently; try again")
        cutoff = ms(now) - CONVERSATION_RETENTION_SECONDS * 1000
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(delete(conversation_messages).where(_m.customer_id == customer_id, _m.at < cutoff))
            await conn.execute(delete(conversations).where(_c.customer_id == customer_id, _c.last_at < cutoff))
        return added

    async def _has(self, customer_id: str, conv: str, message_id: str) -> bool:
        async with translate_errors(), self._engine.connect() as conn:
            found = await conn.execute(
                select(_m.message_id).where(
                    _m.customer_id == customer_id, _m.conversation_id == conv, _m.message_id == message_id
                )
            )
            return found.first() is not None

    async def _record(self, customer_id: str, r: Recorded) -> int:
        m, conv = r.message, r.key.id
        at = ms(m.sent_at)
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(
                insert(conversation_messages).values(
                    customer_id=customer_id,
                    conversation_id=conv,
                    message_id=m.message_id,
                    at=at,
                    record=encode_message(m),
                    status=m.status,
                )
            )
            where = and_(_c.customer_id == customer_id, _c.conversation_id == conv)
            row = (await conn.execute(select(conversations).where(where).with_for_update())).first()
            inbound = m.direction == IN
            if row is None:
                await conn.execute(
                    insert(conversations).values(
                        customer_id=customer_id,
                        conversation_id=conv,
                        platform=r.key.platform.value,
                        account=r.key.account,
                        peer=r.key.peer,
                        title=(r.title or r.key.peer)[:1000],
                        participants=encode_participants(r.participants) if r.participants else None,
                        last_at=at,
                        preview=preview(m),
                        last_inbound_at=at if inbound else None,
                        unread=1 if inbound else 0,
                    )
                )
            else:
                values: dict[str, Any] = {}
                if r.title:
                    values["title"] = r.title[:1000]
                if r.participants:
                    values["participants"] = encode_participants(r.participants)
                if at >= row.last_at:
                    values.update(last_at=at, preview=preview(m))
                if inbound:
                    values["unread"] = _c.unread + 1
                    if row.last_inbound_at is None or at > row.last_inbound_at:
                        values["last_inbound_at"] = at
                if values:
                    await conn.execute(update(conversations).where(where).values(**values))
            await self._trim(conn, customer_id, conv)
        return 1

    async def _trim(self, conn: AsyncConnection, customer_id: str, conv: str) -> None:
        mine = and_(_m.customer_id == customer_id, _m.conversation_id == conv)
        count = (await conn.execute(select(func.count()).where(mine))).scalar_one()
        if count <= MAX_MESSAGES_PER_CONVERSATION:
            return
        oldest = (
            (
                await conn.execute(
                    select(_m.message_id)
                    .where(mine)
                    .order_by(_m.at, _m.message_id)
                    .limit(count - MAX_MESSAGES_PER_CONVERSATION)
                )
            )
            .scalars()
            .all()
        )
        await conn.execute(delete(conversation_messages).where(mine, _m.message_id.in_(oldest)))

    async def set_status(
        self, customer_id: str, platform: Platform, account: str, peer: str, message_id: str, status: str
    ) -> None:
        conv = conversation_id(customer_id, platform, account, peer)
        lower = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK.get(status, 0)]
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(
                update(conversation_messages)
                .where(
                    _m.customer_id == customer_id,
                    _m.conversation_id == conv,
                    _m.message_id == message_id,
                    or_(_m.status.is_(None), _m.status.in_(lower)),
                )
                .values(status=status)
            )

    async def recent(
        self,
        customer_id: str,
        *,
        platform: Platform | None,
        account: str | None,
        unread_only: bool,
        after: Position | None,
        limit: int,
    ) -> tuple[list[Conversation], Position | None]:
        query = (
            select(conversations)
            .where(_c.customer_id == customer_id)
            .order_by(_c.last_at.desc(), _c.conversation_id.desc())
            .limit(limit + 1)
        )
        if after is not None:
            at, conv = after
            query = query.where(or_(_c.last_at < at, and_(_c.last_at == at, _c.conversation_id < conv)))
        if platform is not None:
            query = query.where(_c.platform == platform.value)
        if account is not None:
            query = query.where(_c.account == account)
        if unread_only:
            query = query.where(_c.unread > 0)
        async with translate_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        page = [_head(r) for r in rows[:limit]]
        return page, (ms(page[-1].last_message_at), page[-1].id) if len(rows) > limit else None

    async def get(self, customer_id: str, conversation_id: str) -> Conversation | None:
        async with translate_errors(), self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(conversations).where(_c.customer_id == customer_id, _c.conversation_id == conversation_id)
                )
            ).first()
        return _head(row) if row else None

    async def messages(
        self, customer_id: str, conversation_id: str, before: Position | None, limit: int
    ) -> tuple[list[MessageView], Position | None]:
        query = (
            select(_m.message_id, _m.at, _m.record, _m.status)
            .where(_m.customer_id == customer_id, _m.conversation_id == conversation_id)
            .order_by(_m.at.desc(), _m.message_id.desc())
            .limit(limit + 1)
        )
        if before is not None:
            at, message_id = before
            query = query.where(or_(_m.at < at, and_(_m.at == at, _m.message_id < message_id)))
        async with translate_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        page = rows[:limit]
        messages = [decode_message(r.message_id, bytes(r.record), r.status) for r in reversed(page)]
        more = len(rows) > limit
        return messages, (page[-1].at, page[-1].message_id) if more else None

    async def note_receiving(self, customer_id: str, platform: Platform, business_id: str, now: datetime) -> None:
        r = conversation_receivers.c
        key = and_(r.customer_id == customer_id, r.platform == platform.value, r.business_id == business_id)
        for _ in range(3):
            try:
                async with translate_errors(), self._engine.begin() as conn:
                    changed = await conn.execute(update(conversation_receivers).where(key).values(last_seen=ms(now)))
                    if changed.rowcount == 0:
                        await conn.execute(
                            insert(conversation_receivers).values(
                                customer_id=customer_id,
                                platform=platform.value,
                                business_id=business_id,
                                last_seen=ms(now),
                            )
                        )
                return
            except Conflict:
                continue  # a concurrent first note inserted it: update it now

    async def receiving(self, customer_id: str, platform: Platform, business_id: str) -> bool:
        r = conversation_receivers.c
        cutoff = int(time.time() * 1000) - CONVERSATION_RETENTION_SECONDS * 1000
        async with translate_errors(), self._engine.connect() as conn:
            found = await conn.execute(
                select(r.last_seen).where(
                    r.customer_id == customer_id,
                    r.platform == platform.value,
                    r.business_id == business_id,
                    r.last_seen >= cutoff,
                )
            )
            return found.first() is not None

    async def list_version(self, customer_id: str) -> str | None:
        return None  # none kept: every page is read afresh

    async def mark_read(self, customer_id: str, conversation_id: str) -> None:
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(
                update(conversations)
                .where(_c.customer_id == customer_id, _c.conversation_id == conversation_id)
                .values(unread=0)
            )
