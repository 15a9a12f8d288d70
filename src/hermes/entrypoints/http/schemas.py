"""Bodies of the HTTP API (camelCase on the wire)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar.openapi.spec import OpenAPIType, Schema

from hermes.application.use_cases.list_accounts import AccountState
from hermes.domain.credentials import CredentialField, schemas
from hermes.domain.customer import EMAIL_PATTERN, Customer
from hermes.domain.plan import Plan
from hermes.domain.platform import Platform, all_platforms


class Camel(msgspec.Struct, rename="camel"):
    pass


class ConnectResult(Camel, omit_defaults=True):
    connected: bool
    platform: str
    account: Annotated[str, msgspec.Meta(description="the account, when not the default one")] = "default"


class AccountView(Camel):
    platform: str
    account: str
    status: Annotated[str, msgspec.Meta(description="connected, needs_reauth (the owner connects it again) or failing")]
    connected_at: datetime | None
    last_checked_at: datetime | None
    last_error: str | None
    expires_at: datetime | None


class Connections(Camel):
    customer_id: str
    connections: dict[str, bool]
    accounts: list[AccountView] = []


def connections_document(customer_id: str, accounts: Sequence[AccountState]) -> Connections:
    """`GET /api/connections`: every declared platform (connected when any account is), and each account."""
    held = {a.platform for a in accounts}
    return Connections(
        customer_id=customer_id,
        connections={p: p in held for p in all_platforms()},  # a platform is a str: the key is its name
        accounts=[
            AccountView(
                a.platform.value,
                a.account,
                a.status.value,
                a.connected_at,
                a.last_checked_at,
                a.last_error,
                a.expires_at,
            )
            for a in accounts
        ],
    )


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
    account: str | None = None


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


def _field_schema(spec: CredentialField) -> Schema:
    words = [spec.description] if spec.description else []
    if spec.secret:
        words.append("secret: stored encrypted, never shown again")
    return Schema(
        type=OpenAPIType.INTEGER if spec.integer else OpenAPIType.STRING,
        enum=list(spec.choices) or None,
        description="; ".join(words) or None,
    )


def connect_body_schemas() -> list[Schema]:
    """One schema per platform, projected from its credential schema (the one declaration of its fields)."""
    return [
        Schema(
            type=OpenAPIType.OBJECT,
            title=f"{platform.value} credentials",
            properties={f.name: _field_schema(f) for f in schema.form_fields},
            required=[f.name for f in schema.form_fields if f.required],
            additional_properties=False,
        )
        for platform, schema in schemas().items()
    ]


_CONNECT_BODIES: list[Schema] = []


_PLATFORM_NAMES: list[str] = []


def live_platform_names() -> list[str]:
    """The declared platforms' names, for OpenAPI enums; refilled in place like the connect bodies."""
    _PLATFORM_NAMES[:] = [p.value for p in Platform]
    return _PLATFORM_NAMES


def live_connect_body_schemas() -> list[Schema]:
    """The list the connect route's OpenAPI body refers to, refilled from the declarations in place (an app
    built after a platform was declared documents it)."""
    _CONNECT_BODIES[:] = connect_body_schemas()
    live_platform_names()
    return _CONNECT_BODIES


def connect_body_description() -> str:
    lines = ["The platform's credential fields (camelCase); optional ones in brackets:", ""]
    for platform, schema in schemas().items():
        names = ", ".join(f.name if f.required else f"[{f.name}]" for f in schema.fields)
        lines.append(f"- {platform.value}: {names}")
    return "\n".join(lines)
