"""Tool arguments against the tool's JSON schema, and errors that say what would have been accepted.

One wording for every tool: "limit must be an integer between 1 and 100 (got 500)",
"to is required: a string matching ^\\+?[1-9][0-9]{6,14}$". The schema is the one
clients see, so the error and the listing never disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from hermes.domain.errors import Invalid

MISSING: Any = object()
_SHOWN_CHARS = 40
# What a paged listing returns to continue from: its cursor, or null after the last page.
NEXT_CURSOR: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def cursor_argument(max_length: int) -> dict[str, Any]:
    """A paged listing's `cursor` argument: the `next_cursor` of an earlier page (absent: the first page)."""
    return {"type": "string", "maxLength": max_length, "description": "A next_cursor."}


def limit_argument(default: int, maximum: int) -> dict[str, Any]:
    """A paged listing's `limit` argument: the page size."""
    return {"type": "integer", "minimum": 1, "maximum": maximum, "default": default, "description": "Page size."}


def accepted(prop: Mapping[str, Any]) -> str:
    """What a schema property admits, in words ("an integer between 1 and 100")."""
    if "anyOf" in prop:
        return " or ".join(accepted(branch) for branch in prop["anyOf"] if branch.get("type") != "null")
    if "enum" in prop:
        return "one of " + ", ".join(str(v) for v in prop["enum"])
    kind = prop.get("type")
    if kind in ("integer", "number"):
        noun = "an integer" if kind == "integer" else "a number"
        low, high = prop.get("minimum"), prop.get("maximum")
        if low is not None and high is not None:
            return f"{noun} between {low} and {high}"
        if low is not None:
            return f"{noun} of at least {low}"
        return f"{noun} of at most {high}" if high is not None else noun
    if kind == "string":
        words = "a string"
        shortest, longest = prop.get("minLength"), prop.get("maxLength")
        if shortest is not None and longest is not None:
            words += f" of {shortest}-{longest} characters"
        elif longest is not None:
            words += f" of at most {longest} characters"
        elif shortest:
            words += f" of at least {shortest} characters"
        if "pattern" in prop:
            # `$(?!\n)` makes Python's `$` mean the very end, as in JSON Schema; the reader needs only `$`.
            words += " matching " + prop["pattern"].replace("$(?!\\n)", "$")
        return words
    if kind == "boolean":
        return "true or false"
    if kind == "array":
        words = f"a list of {accepted(prop.get('items', {}))}"
        return words + (f" (at most {prop['maxItems']} items)" if "maxItems" in prop else "")
    if kind == "object":
        return "an object"
    return "a valid value"


def shown(value: Any) -> str:
    """A caller's value, quoted back to it, short."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def invalid_argument(tool: str, schema: Mapping[str, Any], field: str, value: Any = MISSING) -> Invalid:
    """The error for one offending argument: which, why, and what is accepted."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    prop = properties.get(field)
    if prop is None:
        takes = ", ".join(properties) if properties else "no arguments"
        reason = f"is not an argument of {tool} (it takes {takes})"
    elif value is MISSING:
        reason = f"is required: {accepted(prop)}"
    else:
        reason = f"must be {accepted(prop)} (got {shown(value)})"
    return Invalid(f"{field} {reason}", {field: reason})


def _ecma(pattern: str) -> str:
    """JSON Schema patterns are ECMA-262: a final `$` is the very end, not "before a trailing newline"."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + "\\Z"
    return pattern


def _admits(prop: Mapping[str, Any], value: Any) -> bool:
    if "anyOf" in prop:
        return any(_admits(branch, value) for branch in prop["anyOf"])
    if "enum" in prop and value not in prop["enum"]:
        return False
    kind = prop.get("type")
    if kind == "null":
        return value is None
    if kind in ("integer", "number"):
        numeric = int if kind == "integer" else (int, float)
        if isinstance(value, bool) or not isinstance(value, numeric):
            return False
        return bool(prop.get("minimum", value) <= value <= prop.get("maximum", value))
    if kind == "string":
        if not isinstance(value, str):
            return False
        if not prop.get("minLength", 0) <= len(value) <= prop.get("maxLength", len(value)):
            return False
        return "pattern" not in prop or re.search(_ecma(prop["pattern"]), value) is not None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        items = prop.get("items", {})
        return (
            isinstance(value, list)
            and len(value) <= prop.get("maxItems", len(value))
            and all(_admits(items, v) for v in value)
        )
    if kind == "object":
        return isinstance(value, dict)
    return True


def checked(tool: str, schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments, each present one admitted by its property (an explicit null counts as absent)."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    for field in arguments:
        if field not in properties:
            raise invalid_argument(tool, schema, field, arguments[field])
    for field in schema.get("required", ()):
        if arguments.get(field) is None:
            raise invalid_argument(tool, schema, field)
    for field, value in arguments.items():
        if value is not None and not _admits(properties[field], value):
            raise invalid_argument(tool, schema, field, value)
    return {field: arguments.get(field) for field in properties}
