"""What every platform module shares: typed tool arguments (msgspec) turned into tools.

A platform module declares each tool as an arguments Struct plus an async function
taking the parsed arguments and the credentials; `StructTool` derives the JSON
schema clients see from the Struct, validates calls against it, and names the
offending field when validation fails.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from hermes.application.ports.tools import ToolContext, ToolSpec
from hermes.application.send_guard import with_idempotency_key
from hermes.application.tool_arguments import MISSING, invalid_argument
from hermes.application.untrusted import UntrustedText
from hermes.domain.credentials import Credentials
from hermes.domain.errors import Invalid
from hermes.domain.platform import Platform

_AT_FIELD = re.compile(r"at `\$\.?([A-Za-z0-9_]*)")
_MISSING = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


def struct_schema(args_type: type[msgspec.Struct]) -> dict[str, Any]:
    """The Struct's JSON schema, inlined and compact (MCP clients handle a flat object best, and every byte
    of it sits in the model's context): an optional argument is simply not required, not also nullable."""
    schema = msgspec.json.schema(args_type)
    defs = schema.pop("$defs", {})
    ref = schema.get("$ref", "")
    body: dict[str, Any] = defs.get(ref.rsplit("/", 1)[-1], schema) if ref else schema
    body = dict(body)
    body.pop("title", None)
    body["properties"] = {name: _optional_unwrapped(prop) for name, prop in body.get("properties", {}).items()}
    if not body.get("required"):
        body.pop("required", None)
    body["additionalProperties"] = False
    return body


def _optional_unwrapped(prop: dict[str, Any]) -> dict[str, Any]:
    """`{"anyOf": [X, {"type": "null"}], "default": null}` -> X: leaving the argument out says the same."""
    branches = prop.get("anyOf")
    if not isinstance(branches, list) or prop.get("default", ...) is not None:
        return prop
    kept = [b for b in branches if b != {"type": "null"}]
    if len(kept) == len(branches):
        return prop
    unwrapped = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
    if len(kept) == 1:
        return {**unwrapped, **kept[0]}
    return {**unwrapped, "anyOf": kept}


def parse_arguments(tool: str, schema: Mapping[str, Any], args_type: type[msgspec.Struct], arguments: Any) -> Any:
    if not isinstance(arguments, Mapping):
        raise Invalid(f"{tool} takes an object of arguments", {"arguments": "must be an object"})
    try:
        return msgspec.convert(dict(arguments), args_type, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _MISSING.search(message) or _UNKNOWN.search(message) or _AT_FIELD.search(message)
        field = match.group(1) if match and match.group(1) else None
        if field is None:
            explanation = message.split(" - at ", 1)[0]
            raise Invalid(f"invalid arguments: {explanation}", {"arguments": explanation}) from None
        raise invalid_argument(tool, schema, field, arguments.get(field, MISSING)) from None


Runner = Callable[[Any, Credentials], Awaitable[dict[str, Any]]]


# Not frozen: the `Tool` port declares `spec` as a plain attribute, which a frozen field does not satisfy.
@dataclass(slots=True)
class StructTool:
    """A platform tool whose arguments are a msgspec Struct (`forbid_unknown_fields=True`)."""

    spec: ToolSpec
    args_type: type[msgspec.Struct]
    runner: Runner
    target_field: str | None = None

    def parse(self, arguments: Mapping[str, Any]) -> Any:
        return parse_arguments(self.spec.name, self.spec.input_schema, self.args_type, arguments)

    def target(self, parsed: Any) -> str | None:
        if self.target_field is None:
            return None
        value = getattr(parsed, self.target_field, None)
        return None if value is None else str(value)[:512]

    async def run(self, parsed: Any, context: ToolContext) -> dict[str, Any]:
        assert context.credentials is not None  # CallTool loads them for every platform tool
        return await self.runner(parsed, context.credentials)


def tool(
    platform: Platform,
    name: str,
    args_type: type[msgspec.Struct],
    runner: Runner,
    *,
    description: str,
    target: str | None = None,
    title: str | None = None,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    open_world: bool = True,
    output_schema: Mapping[str, Any] | None = None,
    untrusted: tuple[UntrustedText, ...] = (),
) -> StructTool:
    spec = ToolSpec(
        name=name,
        platform=platform,
        description=description,
        input_schema=struct_schema(args_type),
        output_schema=output_schema,
        title=title,
        read_only=read_only,
        destructive=destructive,
        idempotent=idempotent or read_only,
        open_world=open_world,
        untrusted=untrusted,
    )
    return StructTool(with_idempotency_key(spec), args_type, runner, target)
