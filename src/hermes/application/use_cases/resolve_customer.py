from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.customers import CustomerCache, CustomerDirectory
from hermes.application.ports.metering import RateLimiter
from hermes.domain.customer import API_KEY_PREFIX, Customer, digest_api_key, same_digest
from hermes.domain.errors import RateLimited, Unauthorized

_MAX_KEY_LENGTH = 128


@dataclass(slots=True)
class ResolveCustomer:
    """Find the customer behind an API key and count the request against its plan.

    The cache (60 s) is asked first, the directory only on a miss; a deactivation or key
    rotation takes effect on the very next request, even one racing it. Unknown, malformed
    and revoked keys and inactive customers are all refused with the same error, so a
    caller learns nothing about which keys exist. Over the plan's requests per minute
    the request is refused with the seconds to wait.
    """

    directory: CustomerDirectory
    cache: CustomerCache
    limiter: RateLimiter

    async def __call__(self, api_key: str | None) -> Customer:
        customer = await self.identify(api_key)
        await self.meter(customer)
        return customer

    async def meter(self, customer: Customer) -> None:
        """Count one request against the plan's requests per minute (also for OAuth access tokens)."""
        retry_after = await self.limiter.hit(customer.id, customer.plan.limits.requests_per_minute)
        if retry_after is not None:
            raise RateLimited(
                f"rate limit of {customer.plan.limits.requests_per_minute} requests per minute "
                f"for plan {customer.plan.value} exceeded",
                retry_after=retry_after,
            )

    async def identify(self, api_key: str | None) -> Customer:
        """The active customer holding `api_key`, without counting the request."""
        if not api_key or not api_key.startswith(API_KEY_PREFIX) or len(api_key) > _MAX_KEY_LENGTH:
            raise Unauthorized()
        return await self.identify_digest(digest_api_key(api_key))

    async def identify_digest(self, digest: str) -> Customer:
        """The active customer holding the key with this digest (a console session keeps only the digest)."""
        customer = await self.cache.get(digest)
        if customer is None:
            # Read before the directory: a deactivation or rotation landing between the two
            # must not be undone by writing what the directory said before it.
            generation = await self.cache.generation(digest)
            found = await self.directory.find_by_key_digest(digest)
            if found is None or not same_digest(found[1], digest):
                raise Unauthorized()
            customer = found[0]
            if not customer.active:
                raise Unauthorized()
            await self.cache.put(digest, customer, generation)
        if not customer.active:
            raise Unauthorized()
        return customer
