"""The conversation shapes (domain dataclasses) as tool results: plain JSON values, snake_case, and their schema.

The HTTP API projects the same dataclasses to camelCase (entrypoints/http/camel.py); neither side
writes the fields out again.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from typing import Any

from hermes.domain.conversations import ConversationView, Media, MessageView, Participant

_NAMES: dict[str, type] = {
    "ConversationView": ConversationView,
    "MessageView": MessageView,
    "Participant": Participant,
    "Media": Media,
}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # dataclass -> its field names, looked up once per class


def plain(value: Any) -> Any:
    """A dataclass (or list of them) as JSON values; times as ISO 8601 in UTC ("...Z"); None fields kept."""
    names = _FIELD_NAMES.get(type(value))
    if names is not None:
        return {name: plain(getattr(value, name)) for name in names}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _FIELD_NAMES[type(value)] = tuple(f.name for f in dataclasses.fields(value))
        return plain(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def _schema(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        inner = _schema(args[0])
        return {"anyOf": [inner, {"type": "null"}]}
    if origin in (list, tuple):
        return {"type": "array", "items": _schema(args[0])}
    if dataclasses.is_dataclass(hint):
        return object_schema(hint)
    if hint is datetime:
        return {"type": "string", "format": "date-time"}
    return {"type": {str: "string", int: "integer", bool: "boolean", float: "number"}[hint]}


def object_schema(cls: Any) -> dict[str, Any]:
    """JSON schema of a dataclass's `plain` form."""
    hints = typing.get_type_hints(cls, localns=_NAMES)
    return {
        "type": "object",
        "properties": {f.name: _schema(hints[f.name]) for f in dataclasses.fields(cls)},
        "required": [f.name for f in dataclasses.fields(cls)],
    }
