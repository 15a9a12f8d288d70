"""Positions in a walk through stored accounts ordered by (customer, platform, account).

The SQL and in-memory credential stores resume after the last account they listed;
JSON keeps any character a customer id may hold.
"""

from __future__ import annotations

import json

AccountKey = tuple[str, str, str]
START: AccountKey = ("", "", "")


def encode(after: AccountKey) -> str:
    return json.dumps(list(after), separators=(",", ":"))


def decode(position: str) -> AccountKey:
    """The account a walk stopped after; the start for "" or a position this module did not write."""
    if not position:
        return START
    try:
        customer_id, platform, account = json.loads(position)
    except (ValueError, TypeError):
        return START
    if not all(isinstance(part, str) for part in (customer_id, platform, account)):
        return START
    return customer_id, platform, account
