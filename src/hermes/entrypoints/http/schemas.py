"""Bodies of the HTTP API (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from hermes.domain.customer import EMAIL_PATTERN, Customer
from hermes.domain.plan import Plan


class Camel(msgspec.Struct, rename="camel"):
    pass


class ConnectResult(Camel):
    connected: bool
    platform: str


class Connections(Camel):
    customer_id: str
    connections: dict[str, bool]


class UsageView(Camel):
    customer_id: str
    plan: str
    month: str
    requests_per_minute: int
    monthly_tool_calls: int
    tool_calls_used: int
    tool_calls_remaining: int


class CustomerView(Camel):
    id: str
    email: str
    plan: str
    active: bool
    created_at: datetime
    api_key_prefix: str

    @classmethod
    def of(cls, customer: Customer) -> CustomerView:
        return cls(
            customer.id,
            customer.email,
            customer.plan.value,
            customer.active,
            customer.created_at,
            customer.api_key_prefix,
        )


class NewCustomerView(Camel):
    id: str
    api_key: str
    email: str
    plan: str
    active: bool


class CreateCustomerBody(Camel):
    email: Annotated[str, msgspec.Meta(pattern=EMAIL_PATTERN, max_length=320, description="the owner's email")]
    plan: Annotated[Plan, msgspec.Meta(description="free, starter, pro or enterprise")]


class RotatedKey(Camel):
    id: str
    api_key: str


class AuditEntryView(Camel, omit_defaults=True):
    time: datetime
    tool: str
    outcome: str
    duration_ms: float
    platform: str | None = None
    target: str | None = None
    error_code: str | None = None


class AuditLogView(Camel):
    customer_id: str
    date: str
    entries: list[AuditEntryView]
    next_cursor: str | None


class ToolView(Camel, omit_defaults=True):
    name: str
    description: str
    input_schema: dict[str, Any]
    platform: str | None = None
    title: str | None = None
    output_schema: dict[str, Any] | None = None
    read_only: bool = False
    destructive: bool = False


class ToolList(Camel):
    tools: list[ToolView]


class Health(Camel, omit_defaults=True):
    status: str
    checks: dict[str, str] = {}
