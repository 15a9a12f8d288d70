from __future__ import annotations

from dataclasses import dataclass

from hermes.application.consent_requests import ConsentRequests
from hermes.application.ports.customers import CustomerDirectory
from hermes.application.use_cases.get_connections import GetConnections
from hermes.domain.customer import Customer
from hermes.domain.oauth import PendingAuthorization
from hermes.domain.platform import Platform


@dataclass(frozen=True, slots=True)
class ConsentView:
    """What the consent page shows: the request, and once signed in, who and which platforms."""

    pending: PendingAuthorization
    customer: Customer | None
    connections: dict[Platform, bool]


@dataclass(slots=True)
class ViewAuthorization:
    """The consent page's content for the browser that opened the request.

    Before sign-in: which client asks and where the browser goes back afterwards.
    After sign-in: also the customer and the platforms the client will be able to
    use (the connected ones, and any connected later, until access is revoked).
    A customer deactivated meanwhile is shown the sign-in step again.
    """

    requests: ConsentRequests
    directory: CustomerDirectory
    get_connections: GetConnections

    async def __call__(self, request_id: str, browser_secret: str | None) -> ConsentView:
        _, pending = await self.requests.find(request_id, browser_secret)
        if pending.customer_id is None:
            return ConsentView(pending, None, {})
        customer = await self.directory.get(pending.customer_id)
        if customer is None or not customer.active:
            return ConsentView(pending, None, {})
        return ConsentView(pending, customer, await self.get_connections(customer.id))
