"""The HTTP API's camelCase twin of a dataclass the application returns, made by msgspec from its fields.

The application declares a result shape once (a dataclass, snake_case, as tools return it); the HTTP
edge derives a `Camel` Struct with the same fields, so OpenAPI documents it and responses are encoded
camelCase without a hand-written copy of the shape or a key-renaming pass.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import msgspec

from hermes.entrypoints.http.schemas import Camel

_twins: dict[type, type[msgspec.Struct]] = {}


def _mapped(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        mapped = tuple(_mapped(a) for a in args)
        return typing.Union[mapped]  # noqa: UP007  (built from a tuple at run time)
    if origin in (list, tuple):
        return list[_mapped(args[0])]  # type: ignore[misc]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return camel_twin(hint)
    return hint


def camel_twin(cls: type) -> type[msgspec.Struct]:
    """A Struct with `cls`'s fields (nested dataclasses twinned too), encoded camelCase."""
    if cls not in _twins:
        hints = typing.get_type_hints(cls)
        fields: list[Any] = []
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                fields.append((f.name, _mapped(hints[f.name]), f.default))
            else:
                fields.append((f.name, _mapped(hints[f.name])))
        _twins[cls] = msgspec.defstruct(cls.__name__, fields, bases=(Camel,), module=cls.__module__)
    return _twins[cls]


def projected(value: Any) -> msgspec.Struct:
    """`value` (a dataclass) as its camelCase twin."""
    return msgspec.convert(value, camel_twin(type(value)), from_attributes=True)
