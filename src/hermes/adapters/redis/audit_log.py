from __future__ import annotations

from datetime import date, datetime

import msgspec

from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.audit import AUDIT_RETENTION_SECONDS, AuditLog
from hermes.domain.audit import AuditEntry

# The day's sequence counter lives under `logseq:`, so that `logs:{cust}:` holds audit entries
# only (a reader scanning a day's keys finds entries, nothing else). It shares the customer's
# hash tag with the entries, so each script touches one cluster slot. A counter left under the
# old name `logs:{cust}:{day}:seq` is moved (with its expiry) the first time the day is written or read.
_MOVE_OLD_COUNTER = """
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[1])
end
"""
_APPEND = (
    _MOVE_OLD_COUNTER
    + """
local seq = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
local key = ARGV[3] .. string.format('%08d', seq)
redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
return key
"""
)
_COUNT = _MOVE_OLD_COUNTER + "return redis.call('GET', KEYS[1])"


class AuditRecord(msgspec.Struct, rename="camel", omit_defaults=True):
    time: datetime
    tool: str
    outcome: str
    duration_ms: float
    platform: str | None = None
    target: str | None = None
    error_code: str | None = None
    account: str | None = None


_encode = msgspec.json.Encoder().encode
_decoder = msgspec.json.Decoder(AuditRecord)


def _record(entry: AuditEntry) -> AuditRecord:
    return AuditRecord(
        time=entry.time,
        tool=entry.tool,
        outcome=entry.outcome,
        duration_ms=entry.duration_ms,
        platform=entry.platform,
        target=entry.target,
        error_code=entry.error_code,
        account=entry.account,
    )


def day_prefix(customer_id: str, day: date) -> str:
    return f"logs:{{{customer_id}}}:{day.isoformat()}:"


def sequence_key(customer_id: str, day: date) -> str:
    return f"logseq:{{{customer_id}}}:{day.isoformat()}"


class RedisAuditLog(AuditLog):
    """`logs:{cust}:{YYYY-MM-DD}:{seq:08d}`, 90 days; pages read the day's counter, never SCAN."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._append = redis.register_script(_APPEND)
        self._count = redis.register_script(_COUNT)

    async def append(self, entry: AuditEntry) -> str:
        day = entry.time.date()
        prefix = day_prefix(entry.customer_id, day)
        async with translate_errors():
            key = await self._append(
                keys=[sequence_key(entry.customer_id, day), prefix + "seq"],
                args=[_encode(_record(entry)), AUDIT_RETENTION_SECONDS, prefix],
            )
        return key.decode() if isinstance(key, bytes) else str(key)

    async def complete(self, entry_id: str, entry: AuditEntry) -> None:
        async with translate_errors():
            # XX KEEPTTL: only ever replaces the entry written by append, with its 90-day expiry. The command as
            # such: redis-py's `set` inspects its arguments for experimental ones on every call.
            await self._redis.execute_command("SET", entry_id, _encode(_record(entry)), "XX", "KEEPTTL")

    async def list(
        self, customer_id: str, day: date, after: int = 0, limit: int = 1000
    ) -> tuple[list[AuditEntry], int | None]:
        prefix = day_prefix(customer_id, day)
        async with translate_errors():
            count = int(await self._count(keys=[sequence_key(customer_id, day), prefix + "seq"]) or 0)
            last = min(count, after + limit)
            keys = [f"{prefix}{seq:08d}" for seq in range(after + 1, last + 1)]
            values = await self._redis.mget(keys) if keys else []
        entries = []
        for raw in values:
            if raw is None:
                continue  # expired with its day
            r = _decoder.decode(raw)
            entries.append(
                AuditEntry(
                    customer_id, r.time, r.tool, r.platform, r.target, r.outcome, r.error_code, r.duration_ms, r.account
                )
            )
        return entries, (last if last < count else None)
