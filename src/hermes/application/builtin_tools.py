"""Platform-independent tools: they act on Hermes itself, not on a platform account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hermes.application.ports.tools import EnvCredentials, ToolContext, ToolSpec
from hermes.application.use_cases.get_connections import GetConnections
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
