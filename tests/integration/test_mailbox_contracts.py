"""The `Mailboxes` contract on Redis, MariaDB and SQLite (embedded mode)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.redis.mailboxes import RedisMailboxes
from hermes.adapters.sql.mailboxes import SqlMailboxes
from tests.contracts.mailboxes import MailboxesContract

pytestmark = pytest.mark.integration


class TestRedisMailboxes(MailboxesContract):
    @pytest.fixture
    def mailboxes(self, redis: Any) -> RedisMailboxes:
        return RedisMailboxes(redis)


class TestSqlMailboxes(MailboxesContract):
    @pytest.fixture
    def mailboxes(self, engine: AsyncEngine) -> SqlMailboxes:
        return SqlMailboxes(engine)
