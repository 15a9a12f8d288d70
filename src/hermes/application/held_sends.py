"""Sends held for the owner's approval: opening their sealed arguments, expiring them, auditing decisions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hermes.application.ports.audit import AuditLog
from hermes.application.ports.clock import Clock
from hermes.application.ports.credentials import Cipher
from hermes.application.ports.sends import PendingSends
from hermes.application.send_guard import approval_context
from hermes.domain.audit import AuditEntry
from hermes.domain.sends import PendingSend, PendingState


@dataclass(slots=True)
class HeldSends:
    store: PendingSends
    cipher: Cipher
    audit: AuditLog
    clock: Clock

    def arguments(self, pending: PendingSend) -> dict[str, Any]:
        """The tool arguments exactly as the agent gave them (ValueError when the envelope does not open)."""
        plaintext = self.cipher.decrypt(pending.sealed_arguments, approval_context(pending.customer_id, pending.id))
        opened: dict[str, Any] = json.loads(plaintext)
        return opened

    async def expire_if_due(self, pending: PendingSend) -> PendingSend:
        """The held send, moved to expired (and audited so, once) when its time ran out while pending."""
        if pending.state is not PendingState.PENDING or self.clock.now() < pending.expires_at:
            return pending
        if await self.store.move(pending.customer_id, pending.id, PendingState.PENDING, PendingState.EXPIRED):
            await self.record(pending, "expired")
        return await self.store.get(pending.customer_id, pending.id) or pending

    async def record(self, pending: PendingSend, outcome: str) -> None:
        entry = AuditEntry(
            customer_id=pending.customer_id,
            time=self.clock.now(),
            tool=pending.tool,
            platform=pending.platform,
            target=pending.recipient,
            outcome=outcome,
            error_code=None,
            duration_ms=0.0,
        )
        await self.audit.append(entry)
