from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.clock import Clock
from hermes.application.ports.console import ConsoleSessionStore
from hermes.application.ports.metering import RateLimiter
from hermes.application.use_cases.resolve_customer import ResolveCustomer
from hermes.domain.console import ConsolePolicy, ConsoleSession, new_session_id, session_digest
from hermes.domain.customer import Customer, digest_api_key
from hermes.domain.errors import RateLimited


@dataclass(slots=True)
class SignInToConsole:
    """Sign in to the console with the customer's API key; the answer is a new session id.

    The key is checked exactly as on the API (unknown, revoked and inactive are one
    refusal) and then forgotten: the session keeps the customer's id and the key's
    digest, so rotating the key ends it. Attempts are limited per client address,
    successful or not, so the page cannot be used to try keys.
    """

    resolve: ResolveCustomer
    sessions: ConsoleSessionStore
    limiter: RateLimiter
    policy: ConsolePolicy
    clock: Clock

    async def __call__(self, api_key: str | None, client_address: str) -> tuple[str, Customer]:
        # The limiter counts by name; a prefix keeps addresses apart from customer ids.
        retry_after = await self.limiter.hit(f"console-sign-in:{client_address}", self.policy.sign_ins_per_minute)
        if retry_after is not None:
            raise RateLimited("too many sign-in attempts from this address; wait a minute and try again", retry_after)
        key = (api_key or "").strip()
        customer = await self.resolve.identify(key or None)
        session_id = new_session_id()
        session = ConsoleSession(customer.id, digest_api_key(key), self.clock.now())
        await self.sessions.open(session_digest(session_id), session, self.policy.idle_ttl)
        return session_id, customer
