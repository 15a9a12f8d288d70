"""Inbound routing table: which customer, and which of its accounts, owns an account a platform's events name.

A route key is `{kind}:{account id}` as DESIGN section 5 spells it (`wa_phone_id:111`,
`ig_user_id:17841400000000000`, `tg_bot_id:123456789`), one key per platform account, no hash tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hermes.domain.managed_oauth import DEFAULT_ACCOUNT


@dataclass(frozen=True, slots=True, order=True)
class RouteOwner:
    """The customer a route belongs to, and the name under which it connected the account (`?account=`)."""

    customer_id: str
    account: str = DEFAULT_ACCOUNT


class AccountRoutes(Protocol):
    async def claim(self, route_key: str, owner: RouteOwner) -> RouteOwner:
        """Route the account to `owner` unless someone holds it already; returns the holder after the call
        (`owner` when the claim succeeded or it held the route already)."""
        ...

    async def release(self, route_key: str, owner: RouteOwner) -> None:
        """Remove the route, only if `owner` (customer and account name) holds it."""
        ...

    async def owner(self, route_key: str) -> RouteOwner | None: ...
