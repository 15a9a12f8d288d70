"""Which of the customer's accounts on a platform a tool acts for.

A customer with several accounts on a platform sees an `account` argument on that
platform's tools, listing its own account names; everyone else sees the tools as
they are, and every call acts for the `default` account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from hermes.application.ports.tools import ToolSpec
from hermes.application.tool_arguments import invalid_argument
from hermes.domain.errors import Invalid
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT, parse_account
from hermes.domain.platform import Platform

ACCOUNT = "account"


def _property(names: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "string",
        "enum": list(names),
        "description": f"which of the owner's accounts acts (default: {DEFAULT_ACCOUNT})",
    }


def with_accounts(specs: Sequence[ToolSpec], accounts: Mapping[Platform, Sequence[str]]) -> list[ToolSpec]:
    """The specs as this customer sees them: `account` on the tools of platforms where it has several."""
    shown: list[ToolSpec] = []
    for spec in specs:
        names = accounts.get(spec.platform) if spec.platform else None
        if not names or len(names) < 2 or ACCOUNT in spec.input_schema.get("properties", {}):
            shown.append(spec)
            continue
        schema = dict(spec.input_schema)
        schema["properties"] = {**schema.get("properties", {}), ACCOUNT: _property(names)}
        shown.append(replace(spec, input_schema=schema))
    return shown


def split_account(spec: ToolSpec, arguments: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The account a platform tool's call names (default when none), and the arguments the tool itself takes."""
    if spec.platform is None or ACCOUNT not in arguments or ACCOUNT in spec.input_schema.get("properties", {}):
        return DEFAULT_ACCOUNT, arguments
    value = arguments[ACCOUNT]
    rest = {k: v for k, v in arguments.items() if k != ACCOUNT}
    if value is None:
        return DEFAULT_ACCOUNT, rest
    if not isinstance(value, str):
        raise invalid_argument(spec.name, {"properties": {ACCOUNT: {"type": "string"}}}, ACCOUNT, value)
    try:
        return parse_account(value), rest
    except Invalid as exc:
        exc.detail = f"account {exc.fields[ACCOUNT]} (got {value[:40]!r})"
        raise
