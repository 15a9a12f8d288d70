from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, timedelta

from hermes.application.ports.audit import AuditLog
from hermes.application.ports.clock import Clock
from hermes.domain.audit import INTERRUPTED, STARTED, AuditEntry
from hermes.domain.errors import Invalid

# Far longer than any tool call may run (deadlines are seconds): a call still `started` after
# this never finished, because the instance running it died.
STALE_AFTER = timedelta(minutes=10)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# `(?!\n)`: Python's `$` also matches before a final newline; published schemas keep plain `$` semantics.
CURSOR_PATTERN = r"^[0-9]{1,18}$(?!\n)"
_CURSOR = re.compile(CURSOR_PATTERN)


@dataclass(frozen=True, slots=True)
class AuditPage:
    day: date
    entries: list[AuditEntry]
    next_cursor: str | None  # None: no entry follows this page yet


@dataclass(slots=True)
class ListAuditLog:
    """A customer's own audit entries for one UTC day (today unless given), oldest first, a page at a time.

    Every tool call leaves one entry, whether it succeeded or failed. A page holds up to
    `limit` entries (default 100, at most 1000); pass `nextCursor` back as `cursor` for the
    next page, until `nextCursor` is null. An entry written ahead of a platform call and
    never completed is shown as `interrupted` once the call can no longer be running: the
    platform may or may not have acted on it.
    """

    audit: AuditLog
    clock: Clock

    async def __call__(
        self, customer_id: str, day: date | None = None, cursor: str | None = None, limit: int | None = None
    ) -> AuditPage:
        errors: dict[str, str] = {}
        if cursor is not None and not _CURSOR.fullmatch(cursor):
            errors["cursor"] = "must be a nextCursor returned by an earlier page"
        size = DEFAULT_LIMIT if limit is None else limit
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_LIMIT:
            errors["limit"] = f"must be between 1 and {MAX_LIMIT}"
        if errors:
            raise Invalid("invalid audit log query: " + ", ".join(sorted(errors)), errors)
        now = self.clock.now().astimezone(UTC)
        parsed = day or now.date()
        entries, after = await self.audit.list(customer_id, parsed, int(cursor or 0), size)
        return AuditPage(
            parsed,
            [
                replace(e, outcome=INTERRUPTED) if e.outcome == STARTED and now - e.time > STALE_AFTER else e
                for e in entries
            ],
            None if after is None else str(after),
        )
