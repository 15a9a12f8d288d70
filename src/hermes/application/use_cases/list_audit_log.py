from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from hermes.application.ports.audit import AuditLog
from hermes.domain.audit import AuditEntry
from hermes.domain.errors import Invalid


@dataclass(slots=True)
class ListAuditLog:
    """A customer's own audit entries for one UTC day, oldest first."""

    audit: AuditLog

    async def __call__(self, customer_id: str, day: str | None) -> list[AuditEntry]:
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day or ""):
                raise ValueError
            parsed = date.fromisoformat(day or "")
        except ValueError:
            raise Invalid("date must be YYYY-MM-DD", {"date": "must be a date as YYYY-MM-DD"}) from None
        return await self.audit.list(customer_id, parsed)
