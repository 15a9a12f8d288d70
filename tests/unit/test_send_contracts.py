"""The send guards' store contracts on the in-memory adapters."""

from __future__ import annotations

import pytest

from hermes.adapters.memory.sends import (
    InMemoryIdempotencyKeys,
    InMemoryPendingSends,
    InMemoryPolicyStore,
    InMemoryRecipientLedger,
)
from tests.contracts.sends import (
    IdempotencyKeysContract,
    PendingSendsContract,
    PolicyStoreContract,
    RecipientLedgerContract,
)


class TestInMemoryPolicyStore(PolicyStoreContract):
    @pytest.fixture
    def policy_store(self) -> InMemoryPolicyStore:
        return InMemoryPolicyStore()


class TestInMemoryIdempotencyKeys(IdempotencyKeysContract):
    @pytest.fixture
    def idempotency_keys(self) -> InMemoryIdempotencyKeys:
        return InMemoryIdempotencyKeys()


class TestInMemoryRecipientLedger(RecipientLedgerContract):
    @pytest.fixture
    def recipient_ledger(self) -> InMemoryRecipientLedger:
        return InMemoryRecipientLedger()


class TestInMemoryPendingSends(PendingSendsContract):
    @pytest.fixture
    def pending_sends(self) -> InMemoryPendingSends:
        return InMemoryPendingSends()
