"""Input checks that hold under hostile input.

Patterns that validate input accept nothing after the match: Python's `$` also matches before a
final newline, so every published pattern that ends in `$` must still refuse "value\n".
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest

from hermes.adapters.platforms.whatsapp import SendMessageArgs
from hermes.application.use_cases.list_audit_log import ListAuditLog
from hermes.application.use_cases.list_inbox import ListInbox
from hermes.domain.customer import EMAIL_PATTERN
from hermes.domain.errors import Invalid
from tests.unit.conftest import FixedClock


async def test_inbox_and_audit_cursors_refuse_a_trailing_newline() -> None:
    with pytest.raises(Invalid) as inbox:
        await ListInbox(inbox=None)("cust", cursor="1-0\n")  # type: ignore[arg-type]
    assert set(inbox.value.fields) == {"cursor"}
    with pytest.raises(Invalid) as audit:
        await ListAuditLog(audit=None, clock=FixedClock())("cust", cursor="1\n")  # type: ignore[arg-type]
    assert set(audit.value.fields) == {"cursor"}


@pytest.mark.parametrize("limit", [0, 1001, -1])
async def test_audit_pages_hold_1_to_1000_entries(limit: int) -> None:
    with pytest.raises(Invalid) as caught:
        await ListAuditLog(audit=None, clock=FixedClock())("cust", limit=limit)  # type: ignore[arg-type]
    assert set(caught.value.fields) == {"limit"}


def test_tool_argument_patterns_refuse_a_trailing_newline() -> None:
    assert msgspec.convert({"to": "+16505551234", "message": "hi"}, SendMessageArgs).to == "+16505551234"
    with pytest.raises(msgspec.ValidationError, match="to"):
        msgspec.convert({"to": "+16505551234\n", "message": "hi"}, SendMessageArgs)


def test_the_customer_email_schema_refuses_a_trailing_newline() -> None:
    email = Annotated[str, msgspec.Meta(pattern=EMAIL_PATTERN)]
    assert msgspec.convert("owner@example.com", email) == "owner@example.com"
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert("owner@example.com\n", email)


async def test_the_in_process_rate_limiter_keeps_one_window_per_customer(monkeypatch: pytest.MonkeyPatch) -> None:
    from hermes.adapters.memory import stores

    limiter = stores.InMemoryRateLimiter()
    for minute in range(100):
        monkeypatch.setattr(stores.time, "time", lambda minute=minute: minute * 60.0 + 1)
        assert await limiter.hit("cust", 1) is None  # each new minute starts afresh
    assert await limiter.hit("cust", 1) == 59.0
    assert len(limiter.counts) == 1
