"""Inbound routing table: which customer owns a WhatsApp phone number id."""

from __future__ import annotations

from typing import Protocol


class PhoneRoutes(Protocol):
    async def claim(self, phone_number_id: str, customer_id: str) -> str:
        """Register the number for the customer unless another holds it; returns the owner after the call."""
        ...

    async def release(self, phone_number_id: str, customer_id: str) -> None:
        """Remove the route, only if this customer owns it."""
        ...

    async def owner(self, phone_number_id: str) -> str | None: ...
