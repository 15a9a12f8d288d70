"""The `Mailboxes` contract on the in-memory adapter."""

from __future__ import annotations

import pytest

from hermes.adapters.memory.mailboxes import InMemoryMailboxes
from tests.contracts.mailboxes import MailboxesContract


class TestInMemoryMailboxes(MailboxesContract):
    @pytest.fixture
    def mailboxes(self) -> InMemoryMailboxes:
        return InMemoryMailboxes()
