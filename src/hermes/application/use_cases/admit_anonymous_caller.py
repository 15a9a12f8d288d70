from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.address_limits import AddressLimiter
from hermes.domain.address_limits import AddressBucket, AddressLimits, limit_key
from hermes.domain.errors import RateLimited


def _per(seconds: int) -> str:
    return {60: "a minute", 3600: "an hour", 86400: "a day"}.get(seconds, f"per {seconds} s")


@dataclass(slots=True)
class AdmitAnonymousCaller:
    """Let a request from a caller without credentials through, or refuse it as over its address's limit.

    Every request counts, answered or refused, in fixed windows shared by all
    instances. IPv6 addresses are counted by their /64.
    """

    limiter: AddressLimiter
    limits: AddressLimits

    async def __call__(self, bucket: AddressBucket, address: str) -> None:
        key = limit_key(address)
        for window in self.limits.windows[bucket]:
            wait = await self.limiter.hit(bucket.value, key, window.limit, window.seconds)
            if wait is not None:
                raise RateLimited(
                    f"too many requests from this address (at most {window.limit} {_per(window.seconds)}); "
                    f"try again in {max(1, round(wait))} s",
                    wait,
                )
