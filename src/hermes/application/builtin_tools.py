"""Platform-independent tools: they act on Hermes itself, not on a platform account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hermes.application.inbox_views import entry_view
from hermes.application.ports.tools import EnvCredentials, ToolContext, ToolSpec
from hermes.application.use_cases.get_connections import GetConnections
from hermes.application.use_cases.list_inbox import DEFAULT_LIMIT, MAX_LIMIT, ListInbox
from hermes.application.use_cases.wait_for_inbox import MAX_WAIT_SECONDS, WaitForInbox
from hermes.domain.audit import SINGLE_USER_ID
from hermes.domain.errors import Invalid
from hermes.domain.platform import ALL_PLATFORMS


def _no_arguments(arguments: Mapping[str, Any]) -> None:
    if arguments:
        names = ", ".join(sorted(arguments))
        raise Invalid(f"connections_status takes no arguments (got {names})", dict.fromkeys(arguments, "unexpected"))


@dataclass(slots=True)
class ConnectionsStatusTool:
    get_connections: GetConnections
    env: EnvCredentials
    spec: ToolSpec = field(
        default=ToolSpec(
            name="connections_status",
            platform=None,
            title="Which platforms are connected",
            description=(
                "Which of the eight platforms (email, whatsapp, linkedin, telegram, discord, instagram, "
                "twitter, obsidian) this account can use right now. A platform that is not connected "
                "must be connected by the account owner before its tools work."
            ),
            input_schema={"type": "object", "properties": {}, "additionalProperties": False},
            output_schema={
                "type": "object",
                "properties": {
                    "connections": {
                        "type": "object",
                        "additionalProperties": {"type": "boolean"},
                        "description": "platform name -> connected",
                    }
                },
                "required": ["connections"],
            },
            read_only=True,
            idempotent=True,
            open_world=False,
        )
    )

    def parse(self, arguments: Mapping[str, Any]) -> None:
        _no_arguments(arguments)

    def target(self, parsed: Any) -> str | None:
        return None

    async def run(self, parsed: Any, context: ToolContext) -> dict[str, Any]:
        if context.customer_id is None:
            status = {p.value: self.env.get(p) is not None for p in ALL_PLATFORMS}
        else:
            status = {p.value: v for p, v in (await self.get_connections(context.customer_id)).items()}
        return {"connections": status}


_INBOX_ARGUMENTS = ("platform", "cursor", "limit")


@dataclass(slots=True)
class InboxListTool:
    list_inbox: ListInbox
    spec: ToolSpec = field(
        default=ToolSpec(
            name="inbox_list",
            platform=None,
            title="Read inbound messages",
            description=(
                "Messages that arrived on this account's connected numbers (replies to what you sent, new "
                "conversations) and status updates of messages you sent (sent, delivered, read, failed with "
                "the error code), oldest first. Call again with next_cursor to read what came after; an empty "
                "list means nothing new yet. Media is referenced by id, not included."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "platform": {
                        "type": "string",
                        "enum": [p.value for p in ALL_PLATFORMS],
                        "description": "only entries from this platform",
                    },
                    "cursor": {"type": "string", "description": "next_cursor from the previous call"},
                    "limit": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT,
                        "description": "at most this many entries",
                    },
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
                                "kind": {"type": "string", "enum": ["message", "status"]},
                                "platform": {"type": "string"},
                                "received_at": {"type": "string", "format": "date-time"},
                                "message": {"type": "object"},
                                "status": {"type": "object"},
                            },
                            "required": ["id", "kind", "platform", "received_at"],
                        },
                    },
                    "next_cursor": {"type": ["string", "null"]},
                },
                "required": ["entries", "next_cursor"],
            },
            read_only=True,
            open_world=False,
        )
    )

    def parse(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(arguments) - set(_INBOX_ARGUMENTS))
        if unknown:
            expected = ", ".join(_INBOX_ARGUMENTS)
            raise Invalid(
                f"inbox_list takes {expected} (got {', '.join(unknown)})", dict.fromkeys(unknown, "unexpected")
            )
        errors: dict[str, str] = {}
        for name in ("platform", "cursor"):
            if arguments.get(name) is not None and not isinstance(arguments[name], str):
                errors[name] = "must be a string"
        limit = arguments.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            errors["limit"] = "must be an integer"
        if errors:
            raise Invalid("invalid inbox_list arguments: " + ", ".join(sorted(errors)), errors)
        return {name: arguments.get(name) for name in _INBOX_ARGUMENTS}

    def target(self, parsed: Any) -> str | None:
        return None

    async def run(self, parsed: Any, context: ToolContext) -> dict[str, Any]:
        page = await self.list_inbox(
            context.customer_id or SINGLE_USER_ID, parsed["platform"], parsed["cursor"], parsed["limit"]
        )
        return {"entries": [entry_view(e) for e in page.entries], "next_cursor": page.next_cursor}


_WAIT_ARGUMENTS = ("cursor", "timeout_seconds")


@dataclass(slots=True)
class InboxWaitTool:
    wait_for_inbox: WaitForInbox
    spec: ToolSpec = field(
        default=ToolSpec(
            name="inbox_wait",
            platform=None,
            title="Wait for inbound messages",
            description=(
                "Like inbox_list, but waits up to timeout_seconds for something newer than cursor (without one: "
                "for what arrives after the call). timed_out: true means nothing came; call again with next_cursor."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "cursor": {"type": "string", "description": "next_cursor from inbox_list or inbox_wait"},
                    "timeout_seconds": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": MAX_WAIT_SECONDS,
                        "default": MAX_WAIT_SECONDS,
                        "description": "longest wait",
                    },
                },
                "additionalProperties": False,
            },
            output_schema={
                "type": "object",
                "properties": {
                    "entries": {"type": "array", "items": {"type": "object"}, "description": "as in inbox_list"},
                    "next_cursor": {"type": ["string", "null"]},
                    "timed_out": {"type": "boolean"},
                },
                "required": ["entries", "next_cursor", "timed_out"],
            },
            read_only=True,
            open_world=False,
        )
    )

    def parse(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(arguments) - set(_WAIT_ARGUMENTS))
        if unknown:
            raise Invalid(
                f"inbox_wait takes only cursor and timeout_seconds (got {', '.join(unknown)})",
                dict.fromkeys(unknown, "unexpected"),
            )
        errors: dict[str, str] = {}
        cursor = arguments.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            errors["cursor"] = "must be a string: next_cursor from inbox_list or inbox_wait"
        timeout = arguments.get("timeout_seconds", MAX_WAIT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 <= timeout <= MAX_WAIT_SECONDS:
            errors["timeout_seconds"] = f"must be a number from 0 to {MAX_WAIT_SECONDS}"
        if errors:
            detail = "; ".join(f"{name} {why}" for name, why in sorted(errors.items()))
            raise Invalid(f"invalid inbox_wait arguments: {detail}", errors)
        return {"cursor": cursor, "timeout_seconds": timeout}

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
