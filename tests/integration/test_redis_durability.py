"""Hermes checks at start-up whether Redis could lose credentials, and can refuse to start."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import LogCapture
from tests.integration.redis_process import RedisProcess
from tests.support import make_settings


def test_volatile_redis_is_reported_at_startup(mariadb_url: str, start_hermes: Any, captured_logs: LogCapture) -> None:
    with RedisProcess("--maxmemory-policy", "allkeys-lru") as volatile:
        start_hermes(make_settings(HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=volatile.url))
    assert "credentials at risk" in captured_logs.text
    assert "appendonly yes" in captured_logs.text
    assert "allkeys-lru" in captured_logs.text


def test_durable_redis_raises_no_warning(mariadb_url: str, start_hermes: Any, captured_logs: LogCapture) -> None:
    with RedisProcess("--appendonly", "yes", "--maxmemory-policy", "noeviction") as durable:
        start_hermes(make_settings(HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=durable.url))
    assert "credentials at risk" not in captured_logs.text


def test_require_durable_redis_refuses_to_start(mariadb_url: str, start_hermes: Any) -> None:
    with RedisProcess() as volatile, pytest.raises(RuntimeError, match="did not start"):
        start_hermes(
            make_settings(
                HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=volatile.url, HERMES_REQUIRE_DURABLE_REDIS=True
            )
        )
