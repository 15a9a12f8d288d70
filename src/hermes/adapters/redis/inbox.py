"""A customer's inbox as a Redis Stream, with the dedupe marks beside it.

Keys (the customer id is the hash tag, so one script touches one cluster slot):
- `inbox:{cust}`: a stream, one entry per message or status update (`p` platform,
  `e` the msgpack record). Stream ids are the cursor: ordered, time-based, and
  `XRANGE (cursor` reads what came after. Retention is by time: every append trims
  entries older than 90 days (`XADD MINID ~`), and the key expires 90 days after the
  last append, so a quiet customer's inbox disappears on its own.
- `inbox:{cust}:seen:{platform}:msg:{id}` and `...:status:{id}:{status}`: SET NX EX
  8 days. Checking the mark and appending happen in one script, so ten concurrent
  deliveries of one message append it once.

A stream rather than a sorted set or a list: ids double as stable cursors that
survive trimming, range reads are O(log n), and MINID trimming is retention for free.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hermes.adapters.inbox_records import decode_entry, encode_item
from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.inbound import Inbox
from hermes.domain.inbound import DEDUPE_WINDOW_SECONDS, INBOX_RETENTION_SECONDS, InboxEntry, InboxItem
from hermes.domain.platform import Platform

# KEYS[1] inbox stream. ARGV: min id, stream ttl, dedupe ttl, seen-key prefix, then (dedupe key, platform, record)*.
_APPEND = """
local out = {}
for i = 5, #ARGV, 3 do
  if redis.call('SET', ARGV[4] .. ARGV[i], '1', 'NX', 'EX', ARGV[3]) then
    out[#out + 1] = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', 'p', ARGV[i + 1], 'e', ARGV[i + 2])
  else
    out[#out + 1] = ''
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return out
"""
_SCAN_PAGES = 10


def inbox_key(customer_id: str) -> str:
    return f"inbox:{{{customer_id}}}"


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisInbox(Inbox):
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._append = redis.register_script(_APPEND)

    async def append(self, customer_id: str, items: Sequence[InboxItem], now: datetime) -> list[InboxEntry]:
        if not items:
            return []
        key = inbox_key(customer_id)
        oldest_kept = int((time.time() - INBOX_RETENTION_SECONDS) * 1000)
        args: list[str | int | bytes] = [oldest_kept, INBOX_RETENTION_SECONDS, DEDUPE_WINDOW_SECONDS, f"{key}:seen:"]
        for item in items:
            args += [item.dedupe_key, item.platform.value, encode_item(item, now)]
        async with translate_errors():
            ids = await self._append(keys=[key], args=args)
        return [InboxEntry(_s(i), now, item) for i, item in zip(ids, items, strict=True) if i]

    async def list(
        self, customer_id: str, after: str | None, limit: int, platform: Platform | None = None
    ) -> tuple[list[InboxEntry], str | None]:
        key = inbox_key(customer_id)
        start = f"({after}" if after else "-"
        found: list[InboxEntry] = []
        last: str | None = None
        async with translate_errors():
            # A platform filter may skip entries: read on, a bounded number of pages, to fill the page.
            for _ in range(_SCAN_PAGES if platform else 1):
                want = limit - len(found)
                batch: Any = await self._redis.xrange(key, min=start, count=max(want, 100) if platform else want)
                for entry_id, fields in batch:
                    last = _s(entry_id)
                    if platform is None or fields[b"p"] == platform.value.encode():
                        found.append(decode_entry(last, fields[b"e"]))
                        if len(found) >= limit:
                            break
                if len(found) >= limit or len(batch) < (max(want, 100) if platform else want):
                    break
                start = f"({last}"
        return found, last

    async def tail(self, customer_id: str) -> str | None:
        async with translate_errors():
            newest: Any = await self._redis.xrevrange(inbox_key(customer_id), count=1)
        return _s(newest[0][0]) if newest else None
