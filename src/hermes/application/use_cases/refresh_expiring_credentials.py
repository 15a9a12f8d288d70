from __future__ import annotations

import logging
from dataclasses import dataclass

from hermes.application.fresh_credentials import FreshCredentials
from hermes.domain.errors import HermesError

log = logging.getLogger("hermes.oauth.refresh")


@dataclass(slots=True)
class RefreshExpiringCredentials:
    """Refresh every stored token that is about to expire, so that accounts nobody uses stay connected.

    Each refresh takes the same per-account lock as a tool call's, so a sweep on
    several instances and a tool call never renew one grant twice. A refused grant
    marks its account as needing the owner; other failures are retried on the
    next sweep. Returns how many were renewed.
    """

    fresh: FreshCredentials

    async def __call__(self) -> int:
        renewed = 0
        if not self.fresh.platforms:
            return renewed
        vault = self.fresh.vault
        async for customer_id, platform, account, envelope in vault.store.scan():
            if platform not in self.fresh.platforms:
                continue
            try:
                credentials = vault.open(customer_id, platform, envelope, account)
            except ValueError:
                continue  # unreadable: the owner learns it from the tool error, nothing to renew
            if not self.fresh.due(platform, credentials):
                continue
            try:
                await self.fresh(customer_id, platform, credentials, account)
            except HermesError as exc:
                log.info("customer %s: %s not refreshed: %s", customer_id, platform.value, exc)
                continue
            renewed += 1
        return renewed
