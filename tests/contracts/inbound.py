"""Contract suites of the inbound ports, run against the in-memory adapters (unit) and Redis/MariaDB/SQLite
(integration). Queue fixtures are built with `reclaim_after=RECLAIM` and `max_deliveries=MAX_DELIVERIES`."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from hermes.application.ports.callbacks import KEPT_DELIVERIES, CallbackStore
from hermes.application.ports.inbound import InboundQueue, Inbox, UnroutedNumbers
from hermes.application.ports.queue_stats import QueueStatistics, QueueStats
from hermes.domain.callbacks import Callback, Delivery
from hermes.domain.inbound import InboundMessage, MediaRef, StatusUpdate
from hermes.domain.platform import Platform
from tests.contracts.ports import uid

RECLAIM = 1.0  # long enough that two back-to-back takes on a loaded CI machine stay inside one lease
MAX_DELIVERIES = 3
T0 = datetime(2026, 5, 8, 12, 0, tzinfo=UTC)


def message(message_id: str | None = None, **changes: object) -> InboundMessage:
    values: dict[str, object] = {
        "platform": Platform.WHATSAPP,
        "business_id": "106540352242922",
        "message_id": message_id or f"wamid.{secrets.token_hex(8)}",
        "sender": "16505551234",
        "sent_at": datetime(2026, 5, 8, 11, 59, 43, tzinfo=UTC),
        "type": "text",
        "text": "hi",
        "contact_name": "Sheena",
    }
    values.update(changes)
    return InboundMessage(**values)  # type: ignore[arg-type]


def status(message_id: str, state: str = "delivered", **changes: object) -> StatusUpdate:
    values: dict[str, object] = {
        "platform": Platform.WHATSAPP,
        "business_id": "106540352242922",
        "message_id": message_id,
        "status": state,
        "at": datetime(2026, 5, 8, 11, 59, 50, tzinfo=UTC),
        "recipient": "16505551234",
    }
    values.update(changes)
    return StatusUpdate(**values)  # type: ignore[arg-type]


class InboundQueueContract:
    async def test_put_take_ack(self, inbound_queue: InboundQueue) -> None:
        event_id = await inbound_queue.put(Platform.WHATSAPP, b'{"object":"x"}')
        taken = await inbound_queue.take("a", 10, 1.0)
        assert [(e.id, e.body, e.platform, e.deliveries) for e in taken] == [
            (event_id, b'{"object":"x"}', Platform.WHATSAPP, 1)
        ]
        assert abs((taken[0].received_at - datetime.now(UTC)).total_seconds()) < 5
        await inbound_queue.ack([event_id])
        await asyncio.sleep(RECLAIM + 0.1)
        assert await inbound_queue.take("b", 10, 0.2) == []

    async def test_stats_count_what_waits_and_what_died(self, inbound_queue: InboundQueue) -> None:
        stats = cast(QueueStatistics, inbound_queue)
        assert await stats.stats() == QueueStats(0, 0.0, 0)
        first = await inbound_queue.put(Platform.WHATSAPP, b"{}")
        await inbound_queue.put(Platform.WHATSAPP, b"{}")
        await asyncio.sleep(0.05)
        waiting = await stats.stats()
        assert waiting.depth == 2 and waiting.dead_letters == 0
        assert 0.04 <= waiting.oldest_age < 5
        taken = await inbound_queue.take("a", 10, 1.0)
        assert (await stats.stats()).depth == 2  # taken but not yet routed still counts
        await inbound_queue.dead_letter(next(e for e in taken if e.id == first), "cannot be routed")
        await inbound_queue.ack([e.id for e in taken if e.id != first])
        assert await stats.stats() == QueueStats(0, 0.0, 1)

    async def test_order_and_limit(self, inbound_queue: InboundQueue) -> None:
        ids = [await inbound_queue.put(Platform.WHATSAPP, f"{{{i}}}".encode()) for i in range(5)]
        first = await inbound_queue.take("a", 3, 1.0)
        second = await inbound_queue.take("a", 3, 1.0)
        assert [e.id for e in first + second] == ids
        await inbound_queue.ack(ids)

    async def test_take_waits_for_a_put(self, inbound_queue: InboundQueue) -> None:
        async def later() -> None:
            await asyncio.sleep(0.2)
            await inbound_queue.put(Platform.WHATSAPP, b"{}")

        task = asyncio.create_task(later())
        taken = await inbound_queue.take("a", 1, 3.0)
        await task
        assert len(taken) == 1
        await inbound_queue.ack([taken[0].id])

    async def test_empty_take_returns_after_waiting(self, inbound_queue: InboundQueue) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await inbound_queue.take("a", 5, 0.2) == []
        assert loop.time() - started < 2.0

    async def test_unacknowledged_event_goes_to_another_consumer_after_reclaim_after(
        self, inbound_queue: InboundQueue
    ) -> None:
        event_id = await inbound_queue.put(Platform.WHATSAPP, b"{}")
        assert [e.id for e in await inbound_queue.take("dead", 10, 1.0)] == [event_id]
        assert await inbound_queue.take("alive", 10, 0.05) == []  # not yet: the holder may just be slow
        await asyncio.sleep(RECLAIM + 0.1)
        again = await inbound_queue.take("alive", 10, 1.0)
        assert [(e.id, e.deliveries) for e in again] == [(event_id, 2)]
        await inbound_queue.ack([event_id])

    async def test_concurrent_consumers_never_share_an_event(self, inbound_queue: InboundQueue) -> None:
        ids = {await inbound_queue.put(Platform.WHATSAPP, b"{}") for _ in range(20)}
        seen: list[str] = []

        async def consume(name: str) -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 3
            while len(seen) < 20 and loop.time() < deadline:
                taken = await inbound_queue.take(name, 5, 0.05)
                seen.extend(e.id for e in taken)
                await inbound_queue.ack([e.id for e in taken])  # at once: nothing is left to reclaim

        await asyncio.gather(*(consume(f"c{i}") for i in range(6)))
        assert len(seen) == len(set(seen)) == 20
        assert set(seen) == ids

    async def test_failed_event_goes_to_the_dead_letters_after_max_deliveries(
        self, inbound_queue: InboundQueue
    ) -> None:
        event_id = await inbound_queue.put(Platform.WHATSAPP, b'{"n":1}')
        deliveries = []
        for _ in range(MAX_DELIVERIES):
            taken = await inbound_queue.take("a", 10, 2.0)
            assert [e.id for e in taken] == [event_id]
            deliveries.append(taken[0].deliveries)
            await inbound_queue.fail(taken[0], f"boom {taken[0].deliveries}")
            await asyncio.sleep(RECLAIM + 0.1)
        assert deliveries == list(range(1, MAX_DELIVERIES + 1))
        assert await inbound_queue.take("a", 10, 0.3) == []
        letters = await inbound_queue.dead_letters()
        mine = [d for d in letters if d.event_id == event_id]
        assert len(mine) == 1
        assert mine[0].body == b'{"n":1}' and mine[0].deliveries == MAX_DELIVERIES
        assert mine[0].reason == f"boom {MAX_DELIVERIES}"

    async def test_dead_letter_at_once_then_replay(self, inbound_queue: InboundQueue) -> None:
        event_id = await inbound_queue.put(Platform.WHATSAPP, b"not json")
        (event,) = await inbound_queue.take("a", 10, 1.0)
        await inbound_queue.dead_letter(event, "not a webhook batch")
        (letter,) = [d for d in await inbound_queue.dead_letters() if d.event_id == event_id]
        assert letter.reason == "not a webhook batch" and letter.deliveries == 1
        assert await inbound_queue.take("a", 10, 0.2) == []

        assert await inbound_queue.replay([letter.id]) == 1
        assert [d for d in await inbound_queue.dead_letters() if d.event_id == event_id] == []
        (again,) = await inbound_queue.take("a", 10, 1.0)
        assert again.body == b"not json" and again.deliveries == 1
        assert abs((again.received_at - letter.received_at).total_seconds()) < 0.01
        await inbound_queue.ack([again.id])

    async def test_replay_all(self, inbound_queue: InboundQueue) -> None:
        for _ in range(3):
            await inbound_queue.put(Platform.WHATSAPP, b"{}")
        for event in await inbound_queue.take("a", 10, 1.0):
            await inbound_queue.dead_letter(event, "x")
        assert len(await inbound_queue.dead_letters()) == 3
        assert await inbound_queue.replay() == 3
        assert await inbound_queue.dead_letters() == []
        taken = await inbound_queue.take("a", 10, 1.0)
        assert len(taken) == 3
        await inbound_queue.ack([e.id for e in taken])


class InboxContract:
    async def test_append_list_in_order_with_every_field(self, inbox: Inbox) -> None:
        cust = uid()
        image = message(
            type="image",
            text=None,
            media=MediaRef("image", "1234567890", "image/jpeg", "abc=", "look", None),
            reply_to="wamid.original",
        )
        failed = status("wamid.sent1", "failed", error_code="131047", error_title="Re-engagement message")
        items = [message(), image, failed]
        appended = await inbox.append(cust, items, T0)
        assert [e.item for e in appended] == items
        entries, cursor = await inbox.list(cust, None, 10)
        assert [e.item for e in entries] == items
        assert [e.id for e in entries] == [e.id for e in appended]
        assert entries[0].received_at == T0 and entries[0].kind == "message" and entries[2].kind == "status"
        assert cursor == entries[-1].id
        assert await inbox.tail(cust) == entries[-1].id

    async def test_cursor_pages_and_polls(self, inbox: Inbox) -> None:
        cust = uid()
        await inbox.append(cust, [message() for _ in range(5)], T0)
        first, cursor = await inbox.list(cust, None, 2)
        second, cursor2 = await inbox.list(cust, cursor, 2)
        third, cursor3 = await inbox.list(cust, cursor2, 2)
        assert len(first) == 2 and len(second) == 2 and len(third) == 1
        assert len({e.id for e in first + second + third}) == 5
        assert await inbox.list(cust, cursor3, 2) == ([], None)
        late = await inbox.append(cust, [message()], T0)
        assert [e.id for e in (await inbox.list(cust, cursor3, 2))[0]] == [late[0].id]

    async def test_duplicates_are_dropped_by_message_id_and_by_status(self, inbox: Inbox) -> None:
        cust = uid()
        m = message("wamid.same")
        assert len(await inbox.append(cust, [m, status("wamid.x", "sent")], T0)) == 2
        again = await inbox.append(
            cust, [message("wamid.same", text="changed"), status("wamid.x", "sent"), status("wamid.x", "read")], T0
        )
        assert [e.item for e in again] == [status("wamid.x", "read")]
        assert len((await inbox.list(cust, None, 10))[0]) == 3
        # The same message id for another customer is that customer's own message.
        assert len(await inbox.append(uid(), [m], T0)) == 1

    async def test_duplicate_within_one_batch_counts_once(self, inbox: Inbox) -> None:
        cust = uid()
        m = message()
        assert len(await inbox.append(cust, [m, m], T0)) == 1

    async def test_concurrent_appends_of_one_message_add_it_once(self, inbox: Inbox) -> None:
        cust = uid()
        m = message()
        results = await asyncio.gather(*(inbox.append(cust, [m], T0) for _ in range(10)))
        assert sum(len(r) for r in results) == 1
        assert len((await inbox.list(cust, None, 50))[0]) == 1

    async def test_customers_see_only_their_own(self, inbox: Inbox) -> None:
        a, b = uid(), uid()
        await inbox.append(a, [message()], T0)
        assert await inbox.list(b, None, 10) == ([], None)
        assert await inbox.tail(b) is None

    async def test_platform_filter(self, inbox: Inbox) -> None:
        cust = uid()
        await inbox.append(cust, [message() for _ in range(3)], T0)
        assert len((await inbox.list(cust, None, 10, Platform.WHATSAPP))[0]) == 3
        assert (await inbox.list(cust, None, 10, Platform.TELEGRAM))[0] == []


class UnroutedNumbersContract:
    async def test_counts_add_up_per_number(self, unrouted_numbers: UnroutedNumbers) -> None:
        number = str(secrets.randbelow(10**12))
        await unrouted_numbers.record(Platform.WHATSAPP, number, 2, T0)
        await unrouted_numbers.record(Platform.WHATSAPP, number, 3, T0 + timedelta(minutes=1))
        found = {(p, b): (n, at) for p, b, n, at in await unrouted_numbers.counts()}
        assert found[(Platform.WHATSAPP, number)] == (5, T0 + timedelta(minutes=1))


def a_callback(customer_id: str, **changes: object) -> Callback:
    values: dict[str, object] = {
        "customer_id": customer_id,
        "url": "https://agent.example.com/hook",
        "secret_envelope": b"\x01sealed\xff",
        "registration": secrets.token_hex(8),
        "created_at": T0,
        "cursor": "17",
    }
    values.update(changes)
    return Callback(**values)  # type: ignore[arg-type]


class CallbackStoreContract:
    async def test_replace_secret_swaps_only_the_envelope_it_was_given(self, callback_store: CallbackStore) -> None:
        cust = uid()
        callback = a_callback(cust)
        await callback_store.put(callback)
        await callback_store.advance(cust, callback.registration, "7-0", 2, None)

        assert await callback_store.replace_secret(cust, callback.secret_envelope, b"resealed") is True
        assert await callback_store.replace_secret(cust, callback.secret_envelope, b"stale") is False
        stored = await callback_store.get(cust)
        assert stored is not None
        assert stored.secret_envelope == b"resealed"
        assert (stored.cursor, stored.failures, stored.registration) == ("7-0", 2, callback.registration)
        assert await callback_store.replace_secret(uid(), b"x", b"y") is False

    async def test_put_get_replace_delete(self, callback_store: CallbackStore) -> None:
        cust = uid()
        assert await callback_store.get(cust) is None
        first = a_callback(cust)
        await callback_store.put(first)
        assert await callback_store.get(cust) == first
        assert cust in await callback_store.customers()
        second = a_callback(cust, url="https://other.example.com/x", cursor=None)
        await callback_store.put(second)
        assert await callback_store.get(cust) == second
        assert await callback_store.delete(cust) is True
        assert await callback_store.get(cust) is None
        assert cust not in await callback_store.customers()
        assert await callback_store.delete(cust) is False

    async def test_advance_only_the_current_registration(self, callback_store: CallbackStore) -> None:
        cust = uid()
        callback = a_callback(cust)
        await callback_store.put(callback)
        later = T0 + timedelta(seconds=40)
        assert await callback_store.advance(cust, callback.registration, "20", 2, later) is True
        stored = await callback_store.get(cust)
        assert stored is not None
        assert (stored.cursor, stored.failures, stored.next_attempt_at) == ("20", 2, later)
        assert await callback_store.advance(cust, "stale-registration", "99", 0, None) is False
        assert await callback_store.advance(cust, callback.registration, "21", 0, None) is True
        stored = await callback_store.get(cust)
        assert stored is not None and stored.next_attempt_at is None and stored.cursor == "21"

    async def test_deliveries_newest_first_and_capped(self, callback_store: CallbackStore) -> None:
        cust = uid()
        await callback_store.put(a_callback(cust))
        for i in range(KEPT_DELIVERIES + 5):
            await callback_store.record(
                cust, Delivery(T0 + timedelta(seconds=i), str(i), f"wamid.{i}", 1, "delivered", 200, None, 12.5)
            )
        kept = await callback_store.deliveries(cust)
        assert len(kept) == KEPT_DELIVERIES
        assert kept[0].entry_id == str(KEPT_DELIVERIES + 4)
        assert kept[0] == Delivery(
            T0 + timedelta(seconds=KEPT_DELIVERIES + 4),
            str(KEPT_DELIVERIES + 4),
            f"wamid.{KEPT_DELIVERIES + 4}",
            1,
            "delivered",
            200,
            None,
            12.5,
        )
        assert [d.entry_id for d in await callback_store.deliveries(cust, 2)] == [
            str(KEPT_DELIVERIES + 4),
            str(KEPT_DELIVERIES + 3),
        ]

    @pytest.mark.parametrize("contenders", [5])
    async def test_lease_has_one_holder(self, callback_store: CallbackStore, contenders: int) -> None:
        cust = uid()
        await callback_store.put(a_callback(cust))
        won = await asyncio.gather(*(callback_store.lease(cust, f"o{i}", 30) for i in range(contenders)))
        assert sum(won) == 1
        holder = f"o{won.index(True)}"
        await callback_store.unlease(cust, "someone-else")
        assert await callback_store.lease(cust, "o-late", 30) is False
        await callback_store.unlease(cust, holder)
        assert await callback_store.lease(cust, "o-late", 30) is True
