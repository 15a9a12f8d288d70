"""Credentials that are still good when a tool uses them: tokens near their end are refreshed first.

One refresh at a time per customer, platform and account, across instances: the
holder of the lock re-reads the stored envelope, so a waiter that got the lock
after another refreshed finds the new token and uses it. A refresh token is thus
used once; X rotates it on every refresh and revokes the whole grant when an old
one comes back. The new tokens replace the envelope only if it is still the one
read under the lock, so an account deleted or reconnected meanwhile stays as
its owner left it. Each renewal moves the account's turn in the renewal schedule
(a refused one takes it out: only the owner can bring the account back).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hermes.application.account_health import AccountHealthRecorder
from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.clock import Clock
from hermes.application.ports.managed_oauth import AccountStatuses, PlatformAuthorization, RefreshLocks
from hermes.application.token_renewals import TokenRenewals, renews_at
from hermes.application.use_cases.create_connect_link import CreateConnectLink
from hermes.domain.credentials import Credentials
from hermes.domain.errors import NotConnected, PlatformRejected, Unavailable
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT, EXPIRES_FIELD, AccountHealth, AccountStatus
from hermes.domain.platform import Platform

log = logging.getLogger("hermes.oauth.refresh")

# The token call's own deadline stays well inside the lock's, so a lock never lapses under a live refresh.
LOCK_TTL_SECONDS = 45.0
LOCK_WAIT_SECONDS = 30.0


def expires_at(credentials: Credentials) -> datetime | None:
    value = credentials.get(EXPIRES_FIELD)
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


def refresh_lock_key(customer_id: str, platform: Platform, account: str) -> str:
    return f"{customer_id}:{platform.value}:{account}"


@dataclass(slots=True)
class FreshCredentials:
    vault: CredentialVault
    authorization: PlatformAuthorization
    statuses: AccountStatuses
    locks: RefreshLocks
    clock: Clock
    links: CreateConnectLink
    health: AccountHealthRecorder | None = None  # tells the customer's callback when a renewal is refused
    renewals: TokenRenewals | None = None  # when each account's token is renewed next, for the background renewal
    _managed: frozenset[Platform] = field(init=False)

    def __post_init__(self) -> None:
        self._managed = frozenset(self.authorization.platforms())

    @property
    def platforms(self) -> frozenset[Platform]:
        """The platforms whose tokens are renewed here (their OAuth client is configured)."""
        return self._managed

    def due(self, platform: Platform, credentials: Credentials) -> bool:
        if platform not in self._managed:
            return False
        at = renews_at(self.authorization, platform, credentials)
        return at is not None and at < self.clock.now().timestamp()

    def _still_valid(self, credentials: Credentials) -> bool:
        ends = expires_at(credentials)
        return ends is not None and ends > self.clock.now()

    async def __call__(
        self, customer_id: str, platform: Platform, credentials: Credentials, account: str = DEFAULT_ACCOUNT
    ) -> Credentials:
        """`credentials`, or refreshed ones when they are due; `PlatformRejected` (reconnect) when refused."""
        if not self.due(platform, credentials):
            return credentials
        try:
            return await self._renewed(customer_id, platform, account)
        except (PlatformRejected, Unavailable) as exc:
            if (isinstance(exc, PlatformRejected) and exc.reconnect) or not self._still_valid(credentials):
                raise
            # Renewing early failed for a passing reason (a timeout, a held lock): the token still works.
            log.warning("customer %s: %s not renewed yet (%s); using the current token", customer_id, platform, exc)
            return credentials

    async def _renewed(self, customer_id: str, platform: Platform, account: str) -> Credentials:
        asked = self.clock.now()
        key = refresh_lock_key(customer_id, platform, account)
        async with self.locks.hold(key, LOCK_TTL_SECONDS, LOCK_WAIT_SECONDS):
            envelope = await self.vault.store.get(customer_id, platform, account)
            if envelope is None:
                raise NotConnected(
                    platform.value,
                    f"{platform.display_name} is not connected for this account",
                    fix=f"connect {platform.display_name} in Hermes",
                )
            current = self.vault.open(customer_id, platform, envelope, account)
            if not self.due(platform, current):
                return current  # another caller refreshed while this one waited
            status = await self.statuses.get(customer_id, platform, account)
            if status is not None and status.status is AccountHealth.NEEDS_REAUTH and status.last_checked_at >= asked:
                # Another caller was refused while this one waited: asking again would be refused the same way.
                refused = PlatformRejected(
                    platform.value, status.last_error or "", code="invalid_grant", reconnect=True
                )
                await self._explain_reconnect(customer_id, platform, account, refused)
                raise refused
            try:
                renewed = await self.authorization.refresh(platform, current)
            except PlatformRejected as exc:
                if exc.reconnect:
                    await self._needs_reauth(customer_id, platform, account, current, exc)
                raise
            sealed = self.vault.seal(customer_id, platform, renewed, account)
            if not await self.vault.store.replace_if_unchanged(customer_id, platform, envelope, sealed, account):
                # Deleted or reconnected while the platform answered: the owner's action wins.
                log.info("customer %s: %s changed during a refresh; refreshed tokens dropped", customer_id, platform)
                latest = await self.vault.load(customer_id, platform, account)
                if latest is None:
                    raise NotConnected(
                        platform.value,
                        f"{platform.display_name} is not connected for this account",
                        fix=f"connect {platform.display_name} in Hermes",
                    )
                return latest
            await self.statuses.put(
                customer_id,
                AccountStatus(
                    platform, account, AccountHealth.CONNECTED, self.clock.now(), expires_at=expires_at(renewed)
                ),
            )
            if self.renewals is not None:
                await self.renewals.track(customer_id, platform, account, renewed)
            log.info("customer %s: %s tokens refreshed", customer_id, platform.value)
            return renewed

    async def _needs_reauth(
        self, customer_id: str, platform: Platform, account: str, current: Credentials, exc: PlatformRejected
    ) -> None:
        error = f"{platform.display_name} refused to renew the access: {exc.detail}"
        if self.renewals is not None:
            await self.renewals.forget(customer_id, platform, account)
        if self.health is not None:
            await self.health.needs_reauth(customer_id, platform, account, error)
        else:
            await self.statuses.put(
                customer_id,
                AccountStatus(
                    platform,
                    account,
                    AccountHealth.NEEDS_REAUTH,
                    self.clock.now(),
                    last_error=error,
                    expires_at=expires_at(current),
                ),
            )
        await self._explain_reconnect(customer_id, platform, account, exc)
        log.warning("customer %s: %s refresh refused; account needs the owner to reconnect", customer_id, platform)

    async def _explain_reconnect(
        self, customer_id: str, platform: Platform, account: str, exc: PlatformRejected
    ) -> None:
        name = platform.display_name
        link = await self.links(customer_id, platform, account)
        exc.detail = f"{name} no longer accepts Hermes's access to this account (the owner revoked it or it expired)"
        exc.fix = f"connect {name} again by opening {link.url} (the link works once, for 15 minutes)"
