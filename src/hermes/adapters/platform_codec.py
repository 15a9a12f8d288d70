"""A platform is a declared name, not a type msgspec knows: records write and read it as its string."""

from __future__ import annotations

from hermes.domain.platform import Platform


def platform_out(value: object) -> object:
    if isinstance(value, Platform):
        return value.value
    raise TypeError(f"cannot encode {type(value).__name__}")


def platform_in(kind: type, value: object) -> object:
    if kind is Platform and isinstance(value, str):
        return Platform(value)
    raise TypeError(f"cannot decode {kind}")
