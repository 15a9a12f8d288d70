"""The ConversationStore contract on the in-memory store."""

from __future__ import annotations

import pytest

from hermes.adapters.memory.conversations import InMemoryConversationStore
from tests.contracts.conversations import ConversationStoreContract


class TestInMemoryConversationStore(ConversationStoreContract):
    @pytest.fixture
    def conversations(self) -> InMemoryConversationStore:
        return InMemoryConversationStore()
