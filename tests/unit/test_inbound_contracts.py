"""The inbound port contracts, run against the in-memory adapters."""

from __future__ import annotations

import pytest

from hermes.adapters.memory.inbound import (
    InMemoryCallbackStore,
    InMemoryInboundQueue,
    InMemoryInbox,
    InMemoryUnroutedNumbers,
)
from tests.contracts.inbound import (
    MAX_DELIVERIES,
    RECLAIM,
    CallbackStoreContract,
    InboundQueueContract,
    InboxContract,
    UnroutedNumbersContract,
)


class TestInMemoryInboundQueue(InboundQueueContract):
    @pytest.fixture
    def inbound_queue(self) -> InMemoryInboundQueue:
        return InMemoryInboundQueue(reclaim_after=RECLAIM, max_deliveries=MAX_DELIVERIES)


class TestInMemoryInbox(InboxContract):
    @pytest.fixture
    def inbox(self) -> InMemoryInbox:
        return InMemoryInbox()


class TestInMemoryUnroutedNumbers(UnroutedNumbersContract):
    @pytest.fixture
    def unrouted_numbers(self) -> InMemoryUnroutedNumbers:
        return InMemoryUnroutedNumbers()


class TestInMemoryCallbackStore(CallbackStoreContract):
    @pytest.fixture
    def callback_store(self) -> InMemoryCallbackStore:
        return InMemoryCallbackStore()
