"""inbox_wait over in-memory adapters: returns at once, wakes on arrival, times out, is bounded, cleans up."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from hermes.adapters.memory.inbound import InMemoryInbox
from hermes.adapters.memory.inbox_signals import InMemoryInboxSignals, InMemoryWaitSlots
from hermes.application.builtin_tools import InboxWaitTool
from hermes.application.inbound_handlers import InboxWaitersHandler
from hermes.application.ports.tools import ToolContext
from hermes.application.use_cases.list_inbox import ListInbox
from hermes.application.use_cases.wait_for_inbox import WaitForInbox
from hermes.domain.errors import Invalid, RateLimited
from hermes.domain.inbound import InboundMessage
from hermes.domain.platform import Platform

NOW = datetime(2026, 5, 8, 12, 0, tzinfo=UTC)


class Waiting:
    def __init__(self, max_waits: int = 5) -> None:
        self.inbox = InMemoryInbox()
        self.signals = InMemoryInboxSignals()
        self.slots = InMemoryWaitSlots()
        self.wait = WaitForInbox(ListInbox(self.inbox), self.inbox, self.signals, self.slots, max_waits)
        self.tool = InboxWaitTool(self.wait)
        self.handler = InboxWaitersHandler(self.signals)

    async def arrive(self, customer_id: str, message_id: str) -> None:
        """What routing does: append, then tell the handlers."""
        item = InboundMessage(Platform.WHATSAPP, "111", message_id, "16505551234", NOW, "text", text="hi")
        fresh = await self.inbox.append(customer_id, [item], NOW)
        await self.handler.handle(customer_id, fresh)

    async def call(self, customer_id: str = "cust_a", **arguments: Any) -> dict[str, Any]:
        return await self.tool.run(self.tool.parse(arguments), ToolContext(customer_id))


async def test_entries_newer_than_the_cursor_are_returned_at_once() -> None:
    w = Waiting()
    await w.arrive("cust_a", "m1")
    await w.arrive("cust_a", "m2")
    started = time.monotonic()
    first = await w.call(cursor="0", timeout_seconds=25)
    assert time.monotonic() - started < 0.5
    assert [e["message"]["id"] for e in first["entries"]] == ["m1", "m2"]
    assert first["timed_out"] is False


async def test_without_a_cursor_it_waits_for_what_arrives_after_the_call() -> None:
    w = Waiting()
    await w.arrive("cust_a", "old")
    waiting = asyncio.create_task(w.call(timeout_seconds=10))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await w.arrive("cust_b", "someone-else")
    await asyncio.sleep(0.05)
    assert not waiting.done()
    started = time.monotonic()
    await w.arrive("cust_a", "new")
    result = await asyncio.wait_for(waiting, 1)
    assert time.monotonic() - started < 0.5
    assert [e["message"]["id"] for e in result["entries"]] == ["new"]
    assert result["timed_out"] is False
    after = await w.call(cursor=result["next_cursor"], timeout_seconds=0)
    assert after == {"entries": [], "next_cursor": result["next_cursor"], "timed_out": True}


async def test_nothing_arriving_times_out_with_the_cursor_to_wait_from() -> None:
    w = Waiting()
    await w.arrive("cust_a", "m1")
    tail = await w.inbox.tail("cust_a")
    started = time.monotonic()
    result = await w.call(timeout_seconds=0.2)
    assert 0.2 <= time.monotonic() - started < 1
    assert result == {"entries": [], "next_cursor": tail, "timed_out": True}
    empty = await w.call("cust_new", timeout_seconds=0)
    assert empty == {"entries": [], "next_cursor": None, "timed_out": True}


async def test_a_customer_has_a_bounded_number_of_waits_open() -> None:
    w = Waiting(max_waits=2)
    open_waits = [asyncio.create_task(w.call(timeout_seconds=10)) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(RateLimited, match=r"2 waits .* already open") as refused:
        await w.call(timeout_seconds=10)
    assert "one wait open at a time" in refused.value.detail
    other = asyncio.create_task(w.call("cust_b", timeout_seconds=10))  # another customer is not affected
    await asyncio.sleep(0.05)
    assert not other.done()
    await w.arrive("cust_a", "m1")
    assert all(r["entries"] for r in await asyncio.gather(*open_waits))
    assert (await w.call(cursor="0", timeout_seconds=0))["entries"]  # slots given back
    other.cancel()
    with pytest.raises(asyncio.CancelledError):
        await other


async def test_a_cancelled_wait_gives_back_its_slot_and_listener() -> None:
    w = Waiting(max_waits=1)
    waiting = asyncio.create_task(w.call(timeout_seconds=10))
    await asyncio.sleep(0.05)
    assert w.slots.held == {"cust_a": 1}
    assert w.signals.listeners.count() == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert w.slots.held == {}
    assert w.signals.listeners.count() == 0
    assert (await w.call(timeout_seconds=0))["timed_out"] is True


@pytest.mark.parametrize(
    ("arguments", "field_name", "why"),
    [
        ({"timeout_seconds": 26}, "timeout_seconds", "a number between 0 and 25"),
        ({"timeout_seconds": -1}, "timeout_seconds", "a number between 0 and 25"),
        ({"timeout_seconds": "5"}, "timeout_seconds", "a number between 0 and 25"),
        ({"timeout_seconds": True}, "timeout_seconds", "a number between 0 and 25"),
        ({"cursor": 7}, "cursor", "string"),
        ({"limit": 5}, "limit", "it takes cursor, timeout_seconds"),
    ],
)
def test_bad_arguments_name_the_field_and_what_is_accepted(
    arguments: dict[str, object], field_name: str, why: str
) -> None:
    with pytest.raises(Invalid, match=why) as caught:
        Waiting().tool.parse(arguments)
    assert field_name in caught.value.fields


async def test_a_malformed_cursor_is_refused_without_holding_anything() -> None:
    w = Waiting()
    with pytest.raises(Invalid) as caught:
        await w.call(cursor="x;", timeout_seconds=5)
    assert "cursor" in caught.value.fields
    assert w.slots.held == {} and w.signals.listeners.count() == 0
