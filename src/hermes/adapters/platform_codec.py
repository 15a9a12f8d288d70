"""msgspec hooks for the `Platform` value: a declared name, not a type msgspec knows, so records
that hold one write it as its string and read it back through the registry of declared platforms."""

from __future__ import annotations

from typing import Any

from hermes.domain.platform import Platform


def enc_hook(value: Any) -> Any:
    if isinstance(value, Platform):
        return value.value
    raise TypeError(f"cannot encode {type(value).__name__}")


def dec_hook(kind: type, value: Any) -> Any:
    if kind is Platform and isinstance(value, str):
        return Platform(value)
    raise TypeError(f"cannot decode {kind}")
