"""In-memory credential store, phone routes, metering and audit log."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import date

from hermes.adapters import account_positions
from hermes.application.ports.audit import AuditLog
from hermes.application.ports.credentials import AccountsPage, CredentialStore
from hermes.application.ports.metering import RateLimiter, UsageMeter
from hermes.application.ports.routing import AccountRoutes, RouteOwner
from hermes.domain.audit import AuditEntry
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT
from hermes.domain.platform import Platform


class InMemoryCredentialStore(CredentialStore):
    def __init__(self) -> None:
        self.envelopes: dict[tuple[str, Platform, str], bytes] = {}

    async def put(self, customer_id: str, platform: Platform, envelope: bytes, account: str = DEFAULT_ACCOUNT) -> None:
        self.envelopes[(customer_id, platform, account)] = envelope

    async def get(self, customer_id: str, platform: Platform, account: str = DEFAULT_ACCOUNT) -> bytes | None:
        return self.envelopes.get((customer_id, platform, account))

    async def delete(self, customer_id: str, platform: Platform, account: str = DEFAULT_ACCOUNT) -> bool:
        return self.envelopes.pop((customer_id, platform, account), None) is not None

    async def accounts(self, customer_id: str) -> list[tuple[Platform, str]]:
        return sorted(((p, a) for c, p, a in self.envelopes if c == customer_id), key=lambda x: (x[0].value, x[1]))

    async def present(self, customer_id: str, platforms: Sequence[Platform]) -> list[bool]:
        held = {p for c, p, _ in self.envelopes if c == customer_id}
        return [p in held for p in platforms]

    async def replace_if_unchanged(
        self, customer_id: str, platform: Platform, old: bytes, new: bytes, account: str = DEFAULT_ACCOUNT
    ) -> bool:
        if self.envelopes.get((customer_id, platform, account)) != old:
            return False
        self.envelopes[(customer_id, platform, account)] = new
        return True

    async def scan(self) -> AsyncIterator[tuple[str, Platform, str, bytes]]:
        for (customer_id, platform, account), envelope in list(self.envelopes.items()):
            yield customer_id, platform, account, envelope

    async def page(self, position: str, size: int) -> AccountsPage:
        after = account_positions.decode(position)
        keys = sorted((c, p.value, a) for c, p, a in self.envelopes)
        size = max(1, size)
        found = [k for k in keys if k > after][:size]
        done = len(found) < size
        return AccountsPage(
            [(c, Platform(p), a) for c, p, a in found], None if done else account_positions.encode(found[-1])
        )


class InMemoryAccountRoutes(AccountRoutes):
    def __init__(self) -> None:
        self.owners: dict[str, RouteOwner] = {}

    async def claim(self, route_key: str, owner: RouteOwner) -> RouteOwner:
        return self.owners.setdefault(route_key, owner)

    async def release(self, route_key: str, owner: RouteOwner) -> None:
        if self.owners.get(route_key) == owner:
            del self.owners[route_key]

    async def owner(self, route_key: str) -> RouteOwner | None:
        return self.owners.get(route_key)


class InMemoryRateLimiter(RateLimiter):
    """Fixed one-minute windows, like the Redis limiter; fine for one process."""

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, int]] = {}  # customer -> (window, requests in it)

    async def hit(self, customer_id: str, limit: int) -> float | None:
        now = time.time()
        window = int(now // 60)
        held, count = self.counts.get(customer_id, (window, 0))
        # One entry per customer: past windows are replaced, so a long-running process does not grow.
        count = count + 1 if held == window else 1
        self.counts[customer_id] = (window, count)
        if count > limit:
            return max(1.0, (window + 1) * 60 - now)
        return None


class InMemoryUsageMeter(UsageMeter):
    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = defaultdict(int)

    async def consume(self, customer_id: str, month: str, limit: int) -> int | None:
        if self.counts[(customer_id, month)] >= limit:
            return None
        self.counts[(customer_id, month)] += 1
        return self.counts[(customer_id, month)]

    async def used(self, customer_id: str, month: str) -> int:
        return self.counts.get((customer_id, month), 0)


class InMemoryAuditLog(AuditLog):
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def append(self, entry: AuditEntry) -> str:
        self.entries.append(entry)
        return str(len(self.entries) - 1)

    async def complete(self, entry_id: str, entry: AuditEntry) -> None:
        self.entries[int(entry_id)] = entry

    async def list(
        self, customer_id: str, day: date, after: int = 0, limit: int = 1000
    ) -> tuple[list[AuditEntry], int | None]:
        # Positions are list indexes plus one, so that 0 means "from the first".
        found = [
            (i + 1, e)
            for i, e in enumerate(self.entries)
            if i + 1 > after and e.customer_id == customer_id and e.time.date() == day
        ]
        page = found[:limit]
        return [e for _, e in page], (page[-1][0] if len(found) > limit else None)
