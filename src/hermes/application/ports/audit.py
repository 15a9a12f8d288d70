"""The audit log of tool calls (`logs:{cust}:{date}:{seq}`, kept 90 days)."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from hermes.domain.audit import AuditEntry

AUDIT_RETENTION_SECONDS = 90 * 24 * 3600


class AuditLog(Protocol):
    async def append(self, entry: AuditEntry) -> None: ...

    async def list(self, customer_id: str, day: date, limit: int = 1000) -> list[AuditEntry]: ...
