from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date

from hermes.application.ports.audit import AuditLog
from hermes.application.ports.clock import Clock
from hermes.domain.audit import AuditEntry


@dataclass(slots=True)
class ListAuditLog:
    """A customer's own audit entries for one UTC day (today unless given), oldest first."""

    audit: AuditLog
    clock: Clock

    async def __call__(self, customer_id: str, day: date | None) -> tuple[date, list[AuditEntry]]:
        parsed = day or self.clock.now().astimezone(UTC).date()
        return parsed, await self.audit.list(customer_id, parsed)
