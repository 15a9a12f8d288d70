"""What the audit log records about a tool call: never message bodies, never secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# An entry still "started" after its call's deadline means the process died during the call:
# the platform may or may not have acted. Written before the platform is called, so that
# no action reaches a platform without a trace.
STARTED = "started"
# How a `started` entry reads once its call can no longer be running.
INTERRUPTED = "interrupted"

# Single-user calls (MCP_API_KEY, env credentials) are audited under this pseudo-customer.
SINGLE_USER_ID = "single-user"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    customer_id: str
    time: datetime
    tool: str
    platform: str | None
    target: str | None
    # "started" (write-ahead, replaced when the call ends) | "success" | "error" | "interrupted"; sends add
    # "duplicate", "blocked", "pending_approval", and for held sends "approved" | "declined" | "expired"
    outcome: str
    error_code: str | None
    duration_ms: float
