"""The cursors of conversation listings: a place in a newest-first listing, as one opaque string.

Every store pages by `Position` (a time in ms since the epoch, then an id); this module alone turns a
position into the `next_cursor` clients see and back, so the format is written once for every store.
"""

from __future__ import annotations

from hermes.application.ports.conversations import Position
from hermes.domain.errors import Invalid

CURSOR_PATTERN = r"^[0-9]{1,15}\.(?:[0-9a-f]{2}){1,600}$(?!\n)"
CURSOR_MAX_LENGTH = 1216  # the pattern's longest match


def encode_cursor(position: Position | None) -> str | None:
    """The cursor of a position (None: nothing follows)."""
    if position is None:
        return None
    at_ms, member = position
    return f"{at_ms}.{member.encode().hex()}"


def decode_cursor(cursor: str | None) -> Position | None:
    """The position a cursor names (None: from the start). Every string matching `CURSOR_PATTERN` decodes to
    some position, so a well-formed cursor is never refused."""
    if not cursor:
        return None
    try:
        at, member = cursor.split(".", 1)
        if not at.isascii() or not at.isdigit() or len(cursor) > CURSOR_MAX_LENGTH:
            raise ValueError(at)
        return int(at), bytes.fromhex(member).decode("utf-8", "replace")
    except ValueError:
        raise Invalid(
            "cursor is not a cursor returned by an earlier call", {"cursor": "must be a next_cursor returned earlier"}
        ) from None
