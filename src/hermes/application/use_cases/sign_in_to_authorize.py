from __future__ import annotations

from dataclasses import dataclass, replace

from hermes.application.consent_requests import EXPIRED, ConsentRequests
from hermes.application.use_cases.resolve_customer import ResolveCustomer
from hermes.domain.customer import Customer
from hermes.domain.errors import NotFound


@dataclass(slots=True)
class SignInToAuthorize:
    """Sign in on the consent page with the customer's API key.

    The key is checked exactly as on the API (unknown, revoked and inactive are one
    refusal) and then forgotten: the request remembers only the customer's id, so
    the approval step that follows never sees the key again.
    """

    requests: ConsentRequests
    resolve: ResolveCustomer

    async def __call__(self, request_id: str, browser_secret: str | None, api_key: str | None) -> Customer:
        request_digest, pending = await self.requests.find(request_id, browser_secret)
        customer = await self.resolve.identify((api_key or "").strip() or None)
        if not await self.requests.authorizations.update(request_digest, replace(pending, customer_id=customer.id)):
            raise NotFound(EXPIRED)
        return customer
