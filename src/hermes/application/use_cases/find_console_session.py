from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hermes.application.ports.clock import Clock
from hermes.application.ports.console import ConsoleSessionStore
from hermes.application.use_cases.resolve_customer import ResolveCustomer
from hermes.domain.console import SESSION_ID_LENGTH, ConsolePolicy, session_digest
from hermes.domain.customer import Customer
from hermes.domain.errors import Unauthorized

SIGNED_OUT = "your console session has ended; sign in again"


@dataclass(slots=True)
class FindConsoleSession:
    """The customer signed in to a console session, counted against its plan like an API request.

    Each request restarts the session's idle time. A session past its maximum age,
    or whose key was rotated or whose customer was deactivated, is ended and refused.
    """

    sessions: ConsoleSessionStore
    resolve: ResolveCustomer
    policy: ConsolePolicy
    clock: Clock

    async def __call__(self, session_id: str | None) -> Customer:
        if not session_id or len(session_id) != SESSION_ID_LENGTH:
            raise Unauthorized(SIGNED_OUT)
        digest = session_digest(session_id)
        session = await self.sessions.touch(digest, self.policy.idle_ttl)
        if session is None:
            raise Unauthorized(SIGNED_OUT)
        if self.clock.now() - session.created_at >= timedelta(seconds=self.policy.max_age):
            await self.sessions.close(digest)
            raise Unauthorized(SIGNED_OUT)
        try:
            customer = await self.resolve.identify_digest(session.key_digest)
        except Unauthorized:
            await self.sessions.close(digest)
            raise Unauthorized(SIGNED_OUT) from None
        if customer.id != session.customer_id:
            await self.sessions.close(digest)
            raise Unauthorized(SIGNED_OUT)
        await self.resolve.meter(customer)
        return customer
