from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, timedelta

from hermes.application.ports.audit import AuditLog
from hermes.application.ports.clock import Clock
from hermes.domain.audit import INTERRUPTED, STARTED, AuditEntry

# Far longer than any tool call may run (deadlines are seconds): a call still `started` after
# this never finished, because the instance running it died.
STALE_AFTER = timedelta(minutes=10)


@dataclass(slots=True)
class ListAuditLog:
    """A customer's own audit entries for one UTC day (today unless given), oldest first.

    An entry written ahead of a platform call and never completed is shown as
    `interrupted` once the call can no longer be running: the platform may or may not
    have acted on it.
    """

    audit: AuditLog
    clock: Clock

    async def __call__(self, customer_id: str, day: date | None) -> tuple[date, list[AuditEntry]]:
        now = self.clock.now().astimezone(UTC)
        parsed = day or now.date()
        entries = await self.audit.list(customer_id, parsed)
        return parsed, [
            replace(e, outcome=INTERRUPTED) if e.outcome == STARTED and now - e.time > STALE_AFTER else e
            for e in entries
        ]
