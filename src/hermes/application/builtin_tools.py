"""Platform-independent tools: they act on Hermes itself, not on a platform account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hermes.application.inbox_views import entry_view
from hermes.application.ports.tools import EnvCredentials, ToolContext, ToolSpec
from hermes.application.tool_arguments import NEXT_CURSOR, checked, cursor_argument, limit_argument
from hermes.application.untrusted import UntrustedText
from hermes.application.use_cases.get_connections import GetConnections
from hermes.application.use_cases.list_accounts import ListAccounts
from hermes.application.use_cases.list_inbox import CURSOR_MAX_LENGTH, DEFAULT_LIMIT, MAX_LIMIT, ListInbox
from hermes.application.use_cases.wait_for_inbox import MAX_WAIT_SECONDS, WaitForInbox
from hermes.domain.audit import SINGLE_USER_ID
from hermes.domain.conversations import TWO_WAY_PLATFORMS
from hermes.domain.platform import all_platforms

_CURSOR = cursor_argument(CURSOR_MAX_LENGTH)


def _when(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class ConnectionsStatusTool:
    get_connections: GetConnections
    env: EnvCredentials
    list_accounts: ListAccounts | None = None  # each account's health, where accounts are stored
    spec: ToolSpec = field(
        default=ToolSpec(
            name="connections_status",
            platform=None,
            title="Connected platforms",
            description="Platforms usable now; only the account owner can connect others.",
            input_schema={"type": "object", "properties": {}, "additionalProperties": False},
            output_schema={
                "type": "object",
                "properties": {
                    "connections": {
                        "type": "object",
                        "additionalProperties": {"type": "boolean"},
                        "description": "platform name -> connected",
                    },
                    "accounts": {
                        "type": "array",
                        "description": "each connected account; needs_reauth: only the owner reconnecting helps",
                        "items": {
                            "type": "object",
                            "properties": {
                                "platform": {"type": "string"},
                                "account": {"type": "string"},
                                "status": {"type": "string", "enum": ["connected", "needs_reauth", "failing"]},
                                "connected_at": {"type": ["string", "null"]},
                                "last_checked_at": {"type": ["string", "null"]},
                                "last_error": {"type": ["string", "null"]},
                                "expires_at": {"type": ["string", "null"]},
                            },
                        },
                    },
                },
                "required": ["connections"],
            },
            read_only=True,
            idempotent=True,
            open_world=False,
        )
    )

    def parse(self, arguments: Mapping[str, Any]) -> None:
        checked(self.spec.name, self.spec.input_schema, arguments)

    def target(self, parsed: Any) -> str | None:
        return None

    async def run(self, parsed: Any, context: ToolContext) -> dict[str, Any]:
        if context.customer_id is None:
            status = {p.value: self.env.get(p) is not None for p in all_platforms()}
        else:
            status = {p.value: v for p, v in (await self.get_connections(context.customer_id)).items()}
        result: dict[str, Any] = {"connections": status}
        if context.customer_id is not None and self.list_accounts is not None:
            result["accounts"] = [
                {
                    "platform": a.platform.value,
                    "account": a.account,
                    "status": a.status.value,
                    "connected_at": _when(a.connected_at),
                    "last_checked_at": _when(a.last_checked_at),
                    "last_error": a.last_error,
                    "expires_at": _when(a.expires_at),
                }
                for a in await self.list_accounts(context.customer_id)
            ]
        return result


# What senders wrote, in entries as `entry_view` shapes them (any tool returning inbox entries uses this).
INBOX_UNTRUSTED = (
    UntrustedText("entries[].message", ("text", "contact_name", "subject"), ("from",)),
    UntrustedText("entries[].message.media", ("caption", "filename"), ("from",)),
)


@dataclass(slots=True)
class InboxListTool:
    list_inbox: ListInbox
    spec: ToolSpec = field(
        default=ToolSpec(
            name="inbox_list",
            platform=None,
            title="Read inbound messages",
            description="Received messages and send statuses (delivered, read, failed + error code), oldest first.",
            input_schema={
                "type": "object",
                "properties": {
                    "platform": {"enum": [p.value for p in TWO_WAY_PLATFORMS], "description": "Only this one."},
                    "cursor": _CURSOR,
                    "limit": limit_argument(DEFAULT_LIMIT, MAX_LIMIT),
                },
                "additionalProperties": False,
            },
            output_schema={
                "type": "object",
                "properties": {
                    "entries": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string"},
                                "kind": {"type": "string", "enum": ["message", "status", "connection"]},
                                "platform": {"type": "string"},
                                "account": {"type": "string", "description": "Which of your accounts got it"},
                                "received_at": {"type": "string", "format": "date-time"},
                                "message": {"type": "object"},
                                "status": {"type": "object"},
                                "connection": {"type": "object"},
                            },
                            "required": ["id", "kind", "platform", "account", "received_at"],
                        },
                    },
                    "next_cursor": NEXT_CURSOR,
                },
                "required": ["entries", "next_cursor"],
            },
            read_only=True,
            idempotent=True,
            open_world=False,
            untrusted=INBOX_UNTRUSTED,
        )
    )

    def parse(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        return checked(self.spec.name, self.spec.input_schema, arguments)

    def target(self, parsed: Any) -> str | None:
        return None

    async def run(self, parsed: Any, context: ToolContext) -> dict[str, Any]:
        page = await self.list_inbox(
            context.customer_id or SINGLE_USER_ID, parsed["platform"], parsed["cursor"], parsed["limit"]
        )
        return {"entries": [entry_view(e) for e in page.entries], "next_cursor": page.next_cursor}


@dataclass(slots=True)
class InboxWaitTool:
    wait_for_inbox: WaitForInbox
    spec: ToolSpec = field(
        default=ToolSpec(
            name="inbox_wait",
            platform=None,
            title="Wait for inbound messages",
            description=(
                "inbox_list, waiting up to timeout_seconds for entries after cursor (or now). On timed_out, call again."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "cursor": _CURSOR,
                    "timeout_seconds": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": MAX_WAIT_SECONDS,
                        "default": MAX_WAIT_SECONDS,
                        "description": "Longest wait",
                    },
                },
                "additionalProperties": False,
            },
            output_schema={
                "type": "object",
                "properties": {
                    "entries": {"type": "array", "items": {"type": "object"}, "description": "as in inbox_list"},
                    "next_cursor": NEXT_CURSOR,
                    "timed_out": {"type": "boolean"},
                },
                "required": ["entries", "next_cursor", "timed_out"],
            },
            read_only=True,
            idempotent=True,
            open_world=False,
            untrusted=INBOX_UNTRUSTED,
        )
    )

    def parse(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        parsed = checked(self.spec.name, self.spec.input_schema, arguments)
        if parsed["timeout_seconds"] is None:
            parsed["timeout_seconds"] = MAX_WAIT_SECONDS
        return parsed

    def target(self, parsed: Any) -> str | None:
        return None

    async def run(self, parsed: Any, context: ToolContext) -> dict[str, Any]:
        wait = await self.wait_for_inbox(
            context.customer_id or SINGLE_USER_ID, parsed["cursor"], parsed["timeout_seconds"]
        )
        return {
            "entries": [entry_view(e) for e in wait.entries],
            "next_cursor": wait.next_cursor,
            "timed_out": wait.timed_out,
        }
