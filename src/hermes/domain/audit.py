"""What the audit log records about a tool call: never message bodies, never secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Single-user calls (MCP_API_KEY, env credentials) are audited under this pseudo-customer.
SINGLE_USER_ID = "single-user"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    customer_id: str
    time: datetime
    tool: str
    platform: str | None
    target: str | None
    outcome: str  # "success" | "error"
    error_code: str | None
    duration_ms: float
