"""Kept conversation pages: reused only while nothing they show can have changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hermes.application.use_cases.list_conversations import (
    PAGE_MAX_AGE,
    ConversationPage,
    RenderedPages,
    unchanged_until,
)
from hermes.domain.conversations import CONVERSATION_RETENTION_SECONDS, ConversationView

NOW = datetime(2026, 5, 8, 12, 0, tzinfo=UTC)


def _view(last: datetime, expires: datetime | None, can_reply: bool = True) -> ConversationView:
    return ConversationView("c1", "whatsapp", "default", "Sheena", [], last, "hi", 1, can_reply, expires)


def test_a_page_is_the_same_until_a_shown_reply_window_closes() -> None:
    closes = NOW + timedelta(minutes=3)
    page = ConversationPage([_view(NOW, closes), _view(NOW - timedelta(hours=1), None)], None)
    assert unchanged_until(page.conversations, NOW) == closes
    pages: RenderedPages[bytes] = RenderedPages()
    pages.put("cust_a", "", "7", page.conversations, NOW, b"page")
    assert pages.get("cust_a", "", "7", closes - timedelta(seconds=1)) == b"page"
    assert pages.get("cust_a", "", "7", closes) is None


def test_a_window_already_closed_or_far_off_leaves_the_page_to_its_other_limits() -> None:
    page = ConversationPage([_view(NOW, NOW - timedelta(hours=1), can_reply=False)], None)
    assert unchanged_until(page.conversations, NOW) == NOW + PAGE_MAX_AGE
    oldest = NOW - timedelta(seconds=CONVERSATION_RETENTION_SECONDS) + timedelta(seconds=30)
    idle_soon = ConversationPage([_view(NOW, None), _view(oldest, None)], None)
    assert unchanged_until(idle_soon.conversations, NOW) == oldest + timedelta(seconds=CONVERSATION_RETENTION_SECONDS)


def test_another_version_another_customer_or_query_is_not_served_the_kept_page() -> None:
    page = ConversationPage([_view(NOW, None)], None)
    pages: RenderedPages[bytes] = RenderedPages()
    pages.put("cust_a", "limit=5", "7", page.conversations, NOW, b"page")
    assert pages.get("cust_a", "limit=5", "8", NOW) is None
    assert pages.get("cust_b", "limit=5", "7", NOW) is None
    assert pages.get("cust_a", "", "7", NOW) is None
    assert pages.get("cust_a", "limit=5", None, NOW) is None
    pages.put("cust_c", "", None, page.conversations, NOW, b"unversioned")
    assert pages.get("cust_c", "", None, NOW) is None


def test_the_least_recently_used_page_gives_way() -> None:
    page = ConversationPage([_view(NOW, None)], None)
    pages: RenderedPages[bytes] = RenderedPages(size=2)
    pages.put("a", "", "1", page.conversations, NOW, b"a")
    pages.put("b", "", "1", page.conversations, NOW, b"b")
    assert pages.get("a", "", "1", NOW) == b"a"
    pages.put("c", "", "1", page.conversations, NOW, b"c")
    assert [pages.get(c, "", "1", NOW) for c in "abc"] == [b"a", None, b"c"]
