"""The `connect_link` tool: a link the agent shows its user to connect an account on the platform's own page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hermes.application.ports.tools import ToolContext, ToolSpec
from hermes.application.tool_arguments import checked
from hermes.application.use_cases.create_connect_link import CreateConnectLink
from hermes.domain.errors import Conflict
from hermes.domain.managed_oauth import parse_account
from hermes.domain.platform import Platform


def connect_link_spec(platforms: Sequence[Platform]) -> ToolSpec:
    names = ", ".join(p.display_name for p in platforms)
    return ToolSpec(
        name="connect_link",
        platform=None,
        title="Link to connect an account",
        description=(
            f"A link that connects this customer's {names} account through the platform's own sign-in page. "
            "Show it to the account's owner, who opens it, approves, and is done; it works once, for 15 minutes. "
            "Use it when a tool says the account is not connected or must be reconnected."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "platform": {"type": "string", "enum": [p.value for p in platforms]},
                "account": {
                    "type": "string",
                    "pattern": r"^[a-z0-9_-]{1,32}$",
                    "description": "Which of the customer's accounts on the platform; default: the default one.",
                },
            },
            "required": ["platform"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "url": {"type": "string", "description": "Give this to the account owner to open in a browser."},
                "expires_at": {"type": "string", "format": "date-time"},
            },
            "required": ["url", "expires_at"],
        },
        idempotent=False,
        open_world=False,
    )


@dataclass(slots=True)
class ConnectLinkTool:
    create_link: CreateConnectLink
    platforms: Sequence[Platform]
    spec: ToolSpec = field(init=False)

    def __post_init__(self) -> None:
        self.spec = connect_link_spec(self.platforms)

    def parse(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        parsed = checked(self.spec.name, self.spec.input_schema, arguments)
        parsed["account"] = parse_account(parsed["account"])
        return parsed

    def target(self, parsed: Any) -> str | None:
        return f"{parsed['platform']}:{parsed['account']}"

    async def run(self, parsed: Any, context: ToolContext) -> dict[str, Any]:
        if context.customer_id is None:
            raise Conflict("this server runs for a single user, whose credentials come from its environment")
        link = await self.create_link(context.customer_id, Platform(parsed["platform"]), parsed["account"])
        return {"url": link.url, "expires_at": link.expires_at.isoformat().replace("+00:00", "Z")}
