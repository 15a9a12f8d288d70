"""Authorization requests on the consent page, found only by the browser that opened them."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from hermes.application.ports.clock import Clock
from hermes.application.ports.oauth import AuthorizationStore
from hermes.domain.errors import Forbidden, NotFound
from hermes.domain.oauth import MAX_SECRET_LENGTH, PendingAuthorization, digest_secret

EXPIRED = "this authorization request has expired or was already answered; start connecting again from your app"
FOREIGN = "this authorization request was opened in another browser or the form was altered; start again from your app"


@dataclass(slots=True)
class ConsentRequests:
    authorizations: AuthorizationStore
    clock: Clock

    async def find(self, request_id: str, browser_secret: str | None) -> tuple[str, PendingAuthorization]:
        """The request's digest and the request; `NotFound` if it is gone, `Forbidden` from another browser."""
        if not request_id or len(request_id) > MAX_SECRET_LENGTH:
            raise NotFound(EXPIRED)
        request_digest = digest_secret(request_id)
        pending = await self.authorizations.pending(request_digest)
        if pending is None or pending.expires_at <= self.clock.now():
            raise NotFound(EXPIRED)
        if not browser_secret or len(browser_secret) > MAX_SECRET_LENGTH:
            raise Forbidden(FOREIGN)
        if not hmac.compare_digest(digest_secret(browser_secret).encode(), pending.browser_digest.encode()):
            raise Forbidden(FOREIGN)
        return request_digest, pending
