from __future__ import annotations

import logging
from dataclasses import dataclass

from hermes.application.account_health import AccountHealthRecorder
from hermes.application.credential_vault import CredentialVault
from hermes.application.fresh_credentials import expires_at
from hermes.application.ports.clock import Clock
from hermes.application.ports.customers import CustomerDirectory
from hermes.application.ports.managed_oauth import AccountStatuses, ConnectRequests, PlatformAuthorization
from hermes.application.token_renewals import TokenRenewals
from hermes.domain.errors import Forbidden, Invalid
from hermes.domain.managed_oauth import AccountHealth, AccountStatus, ConnectRequest, state_digest
from hermes.domain.platform import Platform

log = logging.getLogger("hermes.oauth.connect")
MAX_STATE = 512
MAX_CODE = 2048


@dataclass(slots=True)
class CompletePlatformConsent:
    """The platform sent the owner back: trade the code for tokens and store them as the account's credentials.

    The `state` must be one Hermes handed out for this platform, unused and not
    expired; it is spent by the first attempt, whatever its outcome. The tokens are
    renewed in the background before they expire, whether or not the account is used.
    """

    authorization: PlatformAuthorization
    requests: ConnectRequests
    vault: CredentialVault
    statuses: AccountStatuses
    directory: CustomerDirectory
    clock: Clock
    health: AccountHealthRecorder | None = None  # also schedules the account's health checks
    renewals: TokenRenewals | None = None  # schedules the renewal of the tokens

    async def take(self, platform: Platform, state: str | None) -> ConnectRequest:
        if not state or len(state) > MAX_STATE:
            raise Invalid("the link carries no valid state", {"state": "is required"})
        request = await self.requests.take(state_digest(state))
        if request is None or request.platform is not platform or request.expires_at < self.clock.now():
            raise Forbidden("this link is unknown, was already used or has expired")
        return request

    async def __call__(self, platform: Platform, state: str | None, code: str | None) -> ConnectRequest:
        request = await self.take(platform, state)
        if not code or len(code) > MAX_CODE:
            raise Invalid("the platform sent no authorization code", {"code": "is required"})
        customer = await self.directory.get(request.customer_id)
        if customer is None or not customer.active:
            raise Forbidden("the account this link was made for no longer exists")
        credentials = await self.authorization.exchange(platform, code, request.code_verifier, request.redirect_uri)
        await self.vault.save(request.customer_id, platform, credentials, request.account)
        if self.renewals is not None:
            await self.renewals.track(request.customer_id, platform, request.account, credentials)
        if self.health is not None:
            await self.health.connected(request.customer_id, platform, request.account, expires_at(credentials))
        else:
            now = self.clock.now()
            await self.statuses.put(
                request.customer_id,
                AccountStatus(
                    platform,
                    request.account,
                    AccountHealth.CONNECTED,
                    now,
                    expires_at=expires_at(credentials),
                    connected_at=now,
                ),
            )
        log.info("customer %s connected %s through its consent page", request.customer_id, platform.value)
        return request
