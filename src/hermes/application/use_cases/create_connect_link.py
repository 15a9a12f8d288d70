from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from hermes.application.ports.clock import Clock
from hermes.application.ports.managed_oauth import ConnectRequests, PlatformAuthorization
from hermes.domain.errors import NotFound
from hermes.domain.managed_oauth import ConnectRequest, state_digest
from hermes.domain.platform import Platform

CONNECT_LINK_TTL = 15 * 60
CALLBACK_PATH = "/connect/callback"


@dataclass(frozen=True, slots=True)
class ConnectLink:
    url: str
    expires_at: datetime


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(slots=True)
class CreateConnectLink:
    """A link that sends the account owner to the platform's own consent page to connect an account.

    Available for the platforms whose sign-in the operator configured (X, LinkedIn,
    Instagram). The link works once and for 15 minutes; after the owner approves,
    Hermes stores the tokens encrypted and keeps them fresh. Show it to the owner
    of the account, who must be signed in to the platform in that browser.
    """

    authorization: PlatformAuthorization
    requests: ConnectRequests
    clock: Clock
    public_url: str

    async def __call__(self, customer_id: str, platform: Platform, account: str) -> ConnectLink:
        if platform not in self.authorization.platforms():
            offered = ", ".join(p.value for p in self.authorization.platforms()) or "none"
            raise NotFound(
                f"{platform.display_name} cannot be connected through a link on this server "
                f"(platforms with one: {offered})",
                fix=f"connect {platform.display_name} with its credentials (POST /api/connect/{platform.value})",
            )
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64) if self.authorization.uses_pkce(platform) else None
        redirect_uri = f"{self.public_url.rstrip('/')}{CALLBACK_PATH}/{platform.value}"
        expires = self.clock.now() + timedelta(seconds=CONNECT_LINK_TTL)
        await self.requests.put(
            state_digest(state), ConnectRequest(customer_id, platform, account, verifier, redirect_uri, expires)
        )
        challenge = pkce_challenge(verifier) if verifier else None
        return ConnectLink(self.authorization.authorize_url(platform, state, challenge, redirect_uri), expires)
