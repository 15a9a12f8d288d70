"""The health record of each connected account, kept up to date by every call that reaches its platform.

A platform answer meaning the credentials are revoked or expired marks the account
`needs_reauth` at once and tells the customer's callback (`connection.needs_reauth`,
through the inbox, so it is delivered like a message: signed, retried, at least
once). A success marks it `connected` again. Reading the record costs one lookup per
call; it is written only when the status changes, so a healthy account costs no write.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from hermes.application.ports.account_health import HealthSchedule
from hermes.application.ports.clock import Clock
from hermes.application.ports.inbound import InboundHandler, Inbox
from hermes.application.ports.managed_oauth import AccountStatuses
from hermes.application.token_renewals import TokenRenewals
from hermes.application.use_cases.create_connect_link import CreateConnectLink
from hermes.domain.account_health import DEFAULT_CHECK_HOURS, AccountRef, next_check
from hermes.domain.errors import HermesError, PlatformRejected
from hermes.domain.inbound import NEEDS_REAUTH_EVENT, ConnectionEvent
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT, AccountHealth, AccountStatus
from hermes.domain.platform import Platform

log = logging.getLogger("hermes.accounts")
MAX_ERROR = 300


def _account_words(platform: Platform, account: str) -> str:
    name = platform.display_name
    return name if account == DEFAULT_ACCOUNT else f"{name} (account {account})"


@dataclass(slots=True)
class AccountHealthRecorder:
    statuses: AccountStatuses
    inbox: Inbox
    handler: InboundHandler
    clock: Clock
    schedule: HealthSchedule | None = None
    links: CreateConnectLink | None = None  # managed OAuth: a link the owner opens to reconnect
    linked: frozenset[Platform] = frozenset()
    interval: float = DEFAULT_CHECK_HOURS * 3600
    uniform: Callable[[float, float], float] = field(default=random.uniform)
    renewals: TokenRenewals | None = None  # a disconnected account's token is not renewed any more

    async def after_call(self, customer_id: str, platform: Platform, account: str, error: HermesError | None) -> None:
        """What a tool call's outcome says about the account; a store failure here never hides the call's own."""
        try:
            if error is None:
                await self.succeeded(customer_id, platform, account)
            elif isinstance(error, PlatformRejected):
                await self.failed(customer_id, platform, account, error)
        except HermesError as exc:
            log.warning("customer %s: health of %s not recorded: %s", customer_id, platform.value, exc.detail)

    async def connected(
        self, customer_id: str, platform: Platform, account: str, expires_at: datetime | None = None
    ) -> None:
        """Credentials were just stored (and, unless skipped, verified)."""
        now = self.clock.now()
        await self.statuses.put(
            customer_id,
            AccountStatus(platform, account, AccountHealth.CONNECTED, now, expires_at=expires_at, connected_at=now),
        )
        if self.schedule is not None:
            ref = AccountRef(customer_id, platform, account)
            await self.schedule.set(ref, next_check(now.timestamp(), self.interval, self.uniform))

    async def disconnected(self, customer_id: str, platform: Platform, account: str) -> None:
        await self.statuses.remove(customer_id, platform, account)
        if self.schedule is not None:
            await self.schedule.remove(AccountRef(customer_id, platform, account))
        if self.renewals is not None:
            await self.renewals.forget(customer_id, platform, account)

    async def succeeded(self, customer_id: str, platform: Platform, account: str, *, checked: bool = False) -> None:
        """The platform accepted the credentials; a check records the time even when nothing changed."""
        previous = await self.statuses.get(customer_id, platform, account)
        if not checked and previous is not None and previous.status is AccountHealth.CONNECTED:
            return
        await self._put(customer_id, platform, account, AccountHealth.CONNECTED, None, previous)
        if previous is not None and previous.status is not AccountHealth.CONNECTED:
            log.info("customer %s: %s account %s works again", customer_id, platform.value, account)

    async def failed(
        self, customer_id: str, platform: Platform, account: str, exc: HermesError, *, checked: bool = False
    ) -> None:
        """A call failed: revoked or expired credentials mark the account; other failures only count in a check."""
        if isinstance(exc, PlatformRejected) and exc.reconnect:
            await self.needs_reauth(customer_id, platform, account, exc.detail)
            await self.explain(customer_id, platform, account, exc)
        elif checked:
            previous = await self.statuses.get(customer_id, platform, account)
            await self._put(customer_id, platform, account, AccountHealth.FAILING, exc.detail, previous)

    async def needs_reauth(self, customer_id: str, platform: Platform, account: str, error: str) -> bool:
        """Mark the account; on the change, tell the customer's callback. Whether it changed."""
        previous = await self.statuses.get(customer_id, platform, account)
        if previous is not None and previous.status is AccountHealth.NEEDS_REAUTH:
            return False  # the first refusal's words stay: they say why
        await self._put(customer_id, platform, account, AccountHealth.NEEDS_REAUTH, error, previous)
        log.warning("customer %s: %s account %s needs the owner to reconnect", customer_id, platform.value, account)
        now = self.clock.now()
        try:
            fresh = await self.inbox.append(
                customer_id, [ConnectionEvent(platform, account, NEEDS_REAUTH_EVENT, now)], now
            )
            if fresh:
                await self.handler.handle(customer_id, fresh)
        except HermesError as exc:
            # The status is recorded; the event is a courtesy that must not turn the tool's answer into another error.
            log.warning("customer %s: needs_reauth event for %s not queued: %s", customer_id, platform, exc.detail)
        return True

    async def explain(self, customer_id: str, platform: Platform, account: str, exc: PlatformRejected) -> None:
        """The remedy the model passes on: the owner connects the account again (through a link where there is one)."""
        what = _account_words(platform, account)
        exc.fix = f"reconnect {what} in Hermes"
        if self.links is not None and platform in self.linked:
            try:
                link = await self.links(customer_id, platform, account)
            except HermesError:
                return
            exc.fix = f"connect {what} again by opening {link.url} (the link works once, for 15 minutes)"

    async def _put(
        self,
        customer_id: str,
        platform: Platform,
        account: str,
        status: AccountHealth,
        error: str | None,
        previous: AccountStatus | None,
    ) -> None:
        await self.statuses.put(
            customer_id,
            AccountStatus(
                platform,
                account,
                status,
                self.clock.now(),
                last_error=error[:MAX_ERROR] if error else None,
                expires_at=previous.expires_at if previous else None,
                connected_at=previous.connected_at if previous else None,
            ),
        )
