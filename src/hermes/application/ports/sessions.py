"""Tokens issued to a customer's OAuth clients, revoked when its key stops being valid."""

from __future__ import annotations

from typing import Protocol


class SessionRevoker(Protocol):
    async def revoke_customer(self, customer_id: str) -> None: ...
