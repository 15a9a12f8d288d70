"""Contract suite of the ConversationStore port, run on the in-memory store (unit) and Redis, MariaDB and SQLite
(integration)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hermes.application.ports.conversations import ConversationStore
from hermes.domain.conversations import (
    IN,
    MAX_MESSAGES_PER_CONVERSATION,
    OUT,
    ConversationKey,
    Media,
    MessageView,
    Participant,
    Recorded,
)
from hermes.domain.platform import Platform
from tests.contracts.ports import uid

T0 = datetime(2026, 5, 8, 12, 0, tzinfo=UTC)


def received(key: ConversationKey, n: int, *, at: datetime | None = None, text: str | None = None) -> Recorded:
    when = at or T0 + timedelta(minutes=n)
    message = MessageView(f"wamid.in{n}", IN, key.peer, text or f"hello {n}", when)
    return Recorded(key, message, title="Sheena", participants=(Participant(key.peer, "Sheena"),))


def sent(key: ConversationKey, n: int, *, at: datetime | None = None) -> Recorded:
    when = at or T0 + timedelta(minutes=n)
    return Recorded(key, MessageView(f"wamid.out{n}", OUT, "me", f"answer {n}", when, status="sent"))


class ConversationStoreContract:
    async def test_messages_both_ways_with_every_field(self, conversations: ConversationStore) -> None:
        cust = uid()
        key = ConversationKey(cust, Platform.WHATSAPP, "16505551234")
        media = Media("image", "media-1", "a cat", None)
        photo = MessageView("wamid.p", IN, "16505551234", None, T0, media=media, reply_to="wamid.x")
        assert await conversations.record(cust, [Recorded(key, photo, "Sheena"), sent(key, 1)], T0) == 2

        messages, cursor = await conversations.messages(cust, key.id, None, 10)

        assert messages == [photo, sent(key, 1).message]
        assert cursor is None
        head = await conversations.get(cust, key.id)
        assert head is not None
        assert (head.platform, head.account, head.peer, head.title) == (
            Platform.WHATSAPP,
            "default",
            key.peer,
            "Sheena",
        )
        assert (head.last_message_at, head.last_message_preview) == (T0 + timedelta(minutes=1), "answer 1")
        assert (head.unread_count, head.last_inbound_at) == (1, T0)

    async def test_a_message_is_recorded_once(self, conversations: ConversationStore) -> None:
        cust = uid()
        key = ConversationKey(cust, Platform.WHATSAPP, "1555")
        results = await asyncio.gather(*(conversations.record(cust, [received(key, 1)], T0) for _ in range(5)))
        assert sum(results) == 1
        assert len((await conversations.messages(cust, key.id, None, 10))[0]) == 1
        head = await conversations.get(cust, key.id)
        assert head is not None and head.unread_count == 1

    async def test_list_newest_activity_first_paged(self, conversations: ConversationStore) -> None:
        cust = uid()
        keys = [ConversationKey(cust, Platform.WHATSAPP, f"1555000{i}") for i in range(5)]
        for i, key in enumerate(keys):
            await conversations.record(cust, [received(key, i)], T0)
        await conversations.record(cust, [sent(keys[0], 10)], T0)  # the oldest becomes the newest

        seen: list[str] = []
        cursor = None
        for _ in range(3):
            page, cursor = await conversations.recent(
                cust, platform=None, account=None, unread_only=False, after=cursor, limit=2
            )
            seen += [c.peer for c in page]
            if cursor is None:
                break
        assert seen == ["15550000", "15550004", "15550003", "15550002", "15550001"]
        assert cursor is None

    async def test_filters(self, conversations: ConversationStore) -> None:
        cust = uid()
        wa = ConversationKey(cust, Platform.WHATSAPP, "1555")
        tg = ConversationKey(cust, Platform.TELEGRAM, "42")
        await conversations.record(cust, [received(wa, 1), sent(tg, 2)], T0)

        def peers(found: list) -> list[str]:  # type: ignore[type-arg]
            return [c.peer for c in found]

        by_platform, _ = await conversations.recent(
            cust, platform=Platform.TELEGRAM, account=None, unread_only=False, after=None, limit=10
        )
        unread, _ = await conversations.recent(
            cust, platform=None, account=None, unread_only=True, after=None, limit=10
        )
        other_account, _ = await conversations.recent(
            cust, platform=None, account="sales", unread_only=False, after=None, limit=10
        )
        assert (peers(by_platform), peers(unread), peers(other_account)) == (["42"], ["1555"], [])

    async def test_a_filtered_listing_pages_to_every_match(self, conversations: ConversationStore) -> None:
        cust = uid()
        same_time = T0 + timedelta(hours=1)
        keys = [
            ConversationKey(cust, Platform.TELEGRAM if i in (0, 4, 8) else Platform.DISCORD, f"{i}") for i in range(9)
        ]
        # Some at one time, so that the order falls back to the id and a cursor lands between equal times.
        await conversations.record(cust, [sent(k, i, at=same_time if i % 2 else None) for i, k in enumerate(keys)], T0)
        seen: dict[Platform | None, list[str]] = {Platform.TELEGRAM: [], None: []}
        for platform, into in seen.items():
            after = None
            for _ in range(30):
                page, after = await conversations.recent(
                    cust, platform=platform, account=None, unread_only=False, after=after, limit=1
                )
                assert len(page) <= 1
                into += [c.peer for c in page]
                if after is None:
                    break
        # Newest first, equal times by id: the odd ones (all at one time, after every even one), then the even ones.
        odd = sorted((k for k in keys if int(k.peer) % 2), key=lambda k: k.id, reverse=True)
        everything = odd + [keys[i] for i in (8, 6, 4, 2, 0)]
        assert seen[None] == [k.peer for k in everything], (seen, [k.peer for k in everything])
        assert seen[Platform.TELEGRAM] == [p for p in seen[None] if p in ("0", "4", "8")], seen

    async def test_a_listed_head_has_every_field(self, conversations: ConversationStore) -> None:
        cust = uid()
        key = ConversationKey(cust, Platform.INSTAGRAM, "17841400000000001", account="shop")
        other = ConversationKey(cust, Platform.EMAIL, "<root@example.com>")
        await conversations.record(cust, [received(key, 1, text="  héllo\n there 🙂 " + "x" * 300), sent(key, 2)], T0)
        await conversations.record(cust, [Recorded(other, MessageView("m1", OUT, "me", None, T0))], T0)

        listed, _ = await conversations.recent(
            cust, platform=None, account=None, unread_only=False, after=None, limit=10
        )

        assert listed == [await conversations.get(cust, key.id), await conversations.get(cust, other.id)]
        first = listed[0]
        assert (first.platform, first.account, first.peer, first.title) == (
            Platform.INSTAGRAM,
            "shop",
            key.peer,
            "Sheena",
        )
        assert first.participants == (Participant(key.peer, "Sheena"),)
        assert (first.last_message_at, first.last_message_preview) == (T0 + timedelta(minutes=2), "answer 2")
        assert (first.unread_count, first.last_inbound_at) == (1, T0 + timedelta(minutes=1))
        assert (listed[1].participants, listed[1].last_inbound_at, listed[1].title) == ((), None, other.peer)

    async def test_read_marker(self, conversations: ConversationStore) -> None:
        cust = uid()
        key = ConversationKey(cust, Platform.WHATSAPP, "1555")
        await conversations.record(cust, [received(key, 1), received(key, 2)], T0)
        head = await conversations.get(cust, key.id)
        assert head is not None and head.unread_count == 2
        await conversations.mark_read(cust, key.id)
        await conversations.record(cust, [received(key, 3)], T0)
        head = await conversations.get(cust, key.id)
        assert head is not None and head.unread_count == 1
        await conversations.mark_read(cust, "c" + "0" * 23)  # unknown: nothing happens
        assert await conversations.get(cust, "c" + "0" * 23) is None

    async def test_last_inbound_is_the_newest_by_its_own_time(self, conversations: ConversationStore) -> None:
        cust = uid()
        key = ConversationKey(cust, Platform.WHATSAPP, "1555")
        await conversations.record(cust, [received(key, 5), received(key, 1), sent(key, 9)], T0)
        head = await conversations.get(cust, key.id)
        assert head is not None
        assert head.last_inbound_at == T0 + timedelta(minutes=5)
        assert head.last_message_at == T0 + timedelta(minutes=9)

    async def test_messages_page_to_older_ones(self, conversations: ConversationStore) -> None:
        cust = uid()
        key = ConversationKey(cust, Platform.TELEGRAM, "42")
        same_time = T0 + timedelta(hours=1)
        await conversations.record(
            cust, [received(key, i) for i in range(5)] + [sent(key, i, at=same_time) for i in range(3)], T0
        )
        pages: list[list[str]] = []
        cursor = None
        while True:
            page, cursor = await conversations.messages(cust, key.id, cursor, 3)
            pages.append([m.message_id for m in page])
            if cursor is None:
                break
        assert pages == [
            ["wamid.out0", "wamid.out1", "wamid.out2"],
            ["wamid.in2", "wamid.in3", "wamid.in4"],
            ["wamid.in0", "wamid.in1"],
        ]

    async def test_status_only_moves_forward(self, conversations: ConversationStore) -> None:
        cust = uid()
        key = ConversationKey(cust, Platform.WHATSAPP, "1555")
        await conversations.record(cust, [sent(key, 1)], T0)
        for status in ("read", "delivered"):
            await conversations.set_status(cust, Platform.WHATSAPP, "default", "1555", "wamid.out1", status)
        await conversations.set_status(cust, Platform.WHATSAPP, "default", "1555", "wamid.unknown", "read")
        messages, _ = await conversations.messages(cust, key.id, None, 10)
        assert [(m.message_id, m.status) for m in messages] == [("wamid.out1", "read")]

    async def test_oldest_messages_give_way(self, conversations: ConversationStore) -> None:
        cust = uid()
        key = ConversationKey(cust, Platform.DISCORD, "1234567890123456")
        extra = 3
        await conversations.record(cust, [sent(key, i) for i in range(MAX_MESSAGES_PER_CONVERSATION + extra)], T0)
        messages, cursor = await conversations.messages(cust, key.id, None, 100)
        while cursor is not None:
            older, cursor = await conversations.messages(cust, key.id, cursor, 100)
            messages = older + messages
        assert len(messages) == MAX_MESSAGES_PER_CONVERSATION
        assert messages[0].message_id == f"wamid.out{extra}"

    async def test_customers_see_only_their_own(self, conversations: ConversationStore) -> None:
        a, b = uid(), uid()
        key = ConversationKey(a, Platform.WHATSAPP, "1555")
        await conversations.record(a, [received(key, 1)], T0)
        assert await conversations.get(b, key.id) is None
        assert await conversations.recent(b, platform=None, account=None, unread_only=False, after=None, limit=5) == (
            [],
            None,
        )

    async def test_receiving_is_per_customer_and_number(self, conversations: ConversationStore) -> None:
        a, b = uid(), uid()
        await conversations.note_receiving(a, Platform.WHATSAPP, "111", datetime.now(UTC))
        await conversations.note_receiving(a, Platform.WHATSAPP, "111", datetime.now(UTC))  # seen again: still one
        assert await conversations.receiving(a, Platform.WHATSAPP, "111") is True
        assert await conversations.receiving(a, Platform.WHATSAPP, "222") is False
        assert await conversations.receiving(a, Platform.INSTAGRAM, "111") is False
        assert await conversations.receiving(b, Platform.WHATSAPP, "111") is False
