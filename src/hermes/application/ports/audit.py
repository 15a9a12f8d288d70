"""The audit log of tool calls (`logs:{cust}:{date}:{seq}`, kept 90 days)."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from hermes.domain.audit import AuditEntry

AUDIT_RETENTION_SECONDS = 90 * 24 * 3600


class AuditLog(Protocol):
    async def append(self, entry: AuditEntry) -> str:
        """Store an entry; returns its id, so that a `started` entry can be completed in place."""
        ...

    async def complete(self, entry_id: str, entry: AuditEntry) -> None:
        """Replace the entry `entry_id` (same customer and day) with its final form."""
        ...

    async def list(
        self, customer_id: str, day: date, after: int = 0, limit: int = 1000
    ) -> tuple[list[AuditEntry], int | None]:
        """Up to `limit` of the day's entries after position `after` (0: from the first), oldest first,
        and the position to pass as `after` for the next page: None when no entry follows yet."""
        ...
