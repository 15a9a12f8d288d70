"""Inbound routing table: which customer owns an account a platform's events name.

A route key is `{kind}:{account id}` as DESIGN section 5 spells it (`wa_phone_id:111`,
`ig_user_id:17841400000000000`, `tg_bot_id:123456789`), one key per account, no hash tag.
"""

from __future__ import annotations

from typing import Protocol


class AccountRoutes(Protocol):
    async def claim(self, route_key: str, customer_id: str) -> str:
        """Route the account to the customer unless another holds it; returns the owner after the call."""
        ...

    async def release(self, route_key: str, customer_id: str) -> None:
        """Remove the route, only if this customer owns it."""
        ...

    async def owner(self, route_key: str) -> str | None: ...
