"""A platform's answer bodies read with msgspec decoders, the same way in every platform module.

A success body a tool needs and cannot read is `unexpected` (the call may have had its
effect); an error body of another shape than the platform documents is left to `fallback`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import msgspec

from hermes.adapters.platforms.http import unexpected
from hermes.domain.platform import Platform

T = TypeVar("T")


def read(platform: Platform, decode: Callable[[bytes], T], body: bytes, what: str) -> T:
    """The body as `decode` reads it; `what` names it in the error when it cannot ("the message")."""
    try:
        return decode(body)
    except msgspec.DecodeError:
        raise unexpected(platform, what) from None


def read_or_none(decode: Callable[[bytes], T], body: bytes) -> T | None:
    """The body as `decode` reads it, or None when it has another shape (an HTML error page, say)."""
    try:
        return decode(body)
    except msgspec.DecodeError:
        return None
