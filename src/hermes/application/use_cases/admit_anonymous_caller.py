from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.address_limits import AddressLimiter
from hermes.domain.address_limits import AddressBucket, AddressLimits, limit_key
from hermes.domain.errors import RateLimited


@dataclass(slots=True)
class AdmitAnonymousCaller:
    """Let a request from a caller without credentials through, or refuse it as over its address's limit.

    Every request counts, answered or refused, in one-minute windows shared by all
    instances. IPv6 addresses are counted by their /64.
    """

    limiter: AddressLimiter
    limits: AddressLimits

    async def __call__(self, bucket: AddressBucket, address: str) -> None:
        limit = self.limits.per_minute[bucket]
        wait = await self.limiter.hit(bucket.value, limit_key(address), limit)
        if wait is not None:
            raise RateLimited(
                f"too many requests from this address (at most {limit} a minute); try again in {max(1, round(wait))} s",
                wait,
            )
