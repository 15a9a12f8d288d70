"""Conversations in Redis, every key of a customer under its hash tag (one cluster slot per customer).

Keys (`{cust}` is the hash tag, `{conv}` the conversation id):
- `conv:{cust}:recent`: ZSET conversation id -> time (ms) of its newest message: the list, newest first.
- `conv:{cust}:h:{conv}`: HASH, the conversation's head (platform, account, peer, title, participants,
  newest message time and preview, the peer's last message time, unread count).
- `conv:{cust}:heads`: HASH conversation id -> its head as one msgpack map, what a page of the list returns
  (a page is the list's ids and one HMGET here).
- `conv:{cust}:m:{conv}`: HASH message id -> the message (msgpack); `...:t:{conv}` ZSET message id -> its
  time (ms), the order; `...:s:{conv}` HASH message id -> status of a sent message.

- `conv:{cust}:rx:{platform}:{business id}`: webhooks for that number reach this customer (90 days).

One script adds a message and updates the head, so concurrent deliveries of one message add it once
and unread counts stay exact. A conversation keeps its newest `MAX_MESSAGES_PER_CONVERSATION` messages;
its keys expire 90 days after its last message, and the list forgets conversations idle that long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from hermes.adapters.conversation_records import (
    decode_message,
    decode_participants,
    encode_message,
    encode_participants,
    from_ms,
    ms,
)
from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.conversations import ConversationStore, Position
from hermes.domain.conversations import (
    CONVERSATION_RETENTION_SECONDS,
    MAX_MESSAGES_PER_CONVERSATION,
    STATUS_RANK,
    Conversation,
    MessageView,
    Recorded,
    conversation_id,
    preview,
)
from hermes.domain.platform import Platform

# A head's list entry: one msgpack map named as `Conversation`'s fields (times in seconds since the epoch), kept
# in the customer's `heads` hash, so that a page is one HMGET whose blobs strung together decode in one call.
# Every script that changes a head's fields repacks it; a head stored before the `heads` hash existed is packed
# the first time a page shows it.
_PACK_HEAD = """
local function pack_head(key, id, heads)
  local h = redis.call('HMGET', key, 'p', 'a', 'peer', 'title', 'parts', 'last', 'prev', 'unread', 'lin')
  if not h[1] or not h[6] then return nil end
  local people = {}
  if h[5] then
    for _, p in ipairs(cmsgpack.unpack(h[5])) do people[#people + 1] = {id = p[1], name = p[2]} end
  end
  local blob = cmsgpack.pack({
    id = id, platform = h[1], account = h[2], peer = h[3], title = h[4], participants = people,
    last_message_at = tonumber(h[6]) / 1000, last_message_preview = h[7] or '', unread_count = tonumber(h[8] or '0'),
    last_inbound_at = h[9] and tonumber(h[9]) / 1000 or nil
  })
  redis.call('HSET', heads, id, blob)
  return blob
end
"""
# KEYS: recent, head, messages, order, statuses, heads.
# ARGV: 1 conv id, 2 message id, 3 message, 4 time ms, 5 direction, 6 platform, 7 account, 8 peer,
#       9 title ('' keeps it), 10 participants ('' keeps them), 11 preview, 12 cap, 13 ttl, 14 status (''),
#       15 oldest time kept (ms)
_RECORD = (
    _PACK_HEAD
    + """
if redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[3]) == 0 then return 0 end
local at = tonumber(ARGV[4])
redis.call('ZADD', KEYS[4], at, ARGV[2])
if ARGV[14] ~= '' then redis.call('HSET', KEYS[5], ARGV[2], ARGV[14]) end
local cap = tonumber(ARGV[12])
local n = redis.call('ZCARD', KEYS[4])
if n > cap then
  local gone = redis.call('ZPOPMIN', KEYS[4], n - cap)
  for i = 1, #gone, 2 do
    redis.call('HDEL', KEYS[3], gone[i])
    redis.call('HDEL', KEYS[5], gone[i])
  end
end
if redis.call('HSETNX', KEYS[2], 'p', ARGV[6]) == 1 then
  redis.call('HSET', KEYS[2], 'a', ARGV[7], 'peer', ARGV[8], 'title', ARGV[8], 'last', ARGV[4], 'prev', ARGV[11],
    'unread', 0)
  redis.call('ZADD', KEYS[1], at, ARGV[1])
end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[2], 'title', ARGV[9]) end
if ARGV[10] ~= '' then redis.call('HSET', KEYS[2], 'parts', ARGV[10]) end
if at >= tonumber(redis.call('HGET', KEYS[2], 'last')) then
  redis.call('HSET', KEYS[2], 'last', ARGV[4], 'prev', ARGV[11])
  redis.call('ZADD', KEYS[1], at, ARGV[1])
end
if ARGV[5] == 'in' then
  redis.call('HINCRBY', KEYS[2], 'unread', 1)
  if at > tonumber(redis.call('HGET', KEYS[2], 'lin') or '-1') then redis.call('HSET', KEYS[2], 'lin', ARGV[4]) end
end
pack_head(KEYS[2], ARGV[1], KEYS[6])
for i = 1, 6 do redis.call('EXPIRE', KEYS[i], ARGV[13]) end
-- Conversations idle past the retention leave the list and the heads (a bounded number per write).
local idle = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[15], 'LIMIT', 0, 500)
if #idle > 0 then
  redis.call('ZREM', KEYS[1], unpack(idle))
  redis.call('HDEL', KEYS[6], unpack(idle))
end
return 1
"""
)
# KEYS: messages, statuses. ARGV: message id, new status, then every status in rank order.
_STATUS = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local rank = {}
for i = 3, #ARGV do rank[ARGV[i]] = i end
local current = redis.call('HGET', KEYS[2], ARGV[1])
if (rank[ARGV[2]] or 0) > ((current and rank[current]) or 0) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  return 1
end
return 0
"""
# KEYS: recent, heads. ARGV: 1 head key prefix, 2 time (ms) of the position to continue past ('': from the
# newest), 3 its id, 4 platform ('': any), 5 account ('': any), 6 '1': unread only, 7 heads wanted, 8 most list
# entries to look at. The heads share the list's hash tag, so they sit in its slot.
# Reply: the heads found as one msgpack array (their blobs behind an array header), then the time and id of the
# last entry looked at, then 1 when the list ended before the heads wanted were found.
_PAGE = (
    _PACK_HEAD
    + """
local function below(a, b)  -- a < b byte by byte, as the list orders ids, whatever the server's locale
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local want, budget = tonumber(ARGV[7]), tonumber(ARGV[8])
local start = 0
if ARGV[2] ~= '' then
  -- Newest first, equal times by id descending: the entries at the position's time sit between these two
  -- ranks; the page starts at the first of them below the position's id.
  local lo = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[2], '+inf')
  local hi = redis.call('ZCOUNT', KEYS[1], ARGV[2], '+inf')
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if below(redis.call('ZREVRANGE', KEYS[1], mid, mid)[1], ARGV[3]) then hi = mid else lo = mid + 1 end
  end
  start = lo
end
local filtered = ARGV[4] ~= '' or ARGV[5] ~= '' or ARGV[6] == '1'
local chunk = want
if filtered then chunk = math.max(want, 100) end
local heads, seen, ended = {}, 0, 0
local last_ms, last_id = '', ''
while #heads < want and seen < budget do
  local n = math.min(chunk, budget - seen)
  local listed = redis.call('ZREVRANGE', KEYS[1], start + seen, start + seen + n - 1, 'WITHSCORES')
  local ids, keys = {}, {}
  for i = 1, #listed, 2 do
    ids[#ids + 1] = listed[i]
    keys[#keys + 1] = ARGV[1] .. listed[i]
  end
  if #ids == 0 then ended = 1 break end
  local blobs = redis.call('HMGET', KEYS[2], unpack(ids))
  -- A head whose key expired (idle 90 days) while the list lived on is left out; one count tells that none did.
  local all_alive = redis.call('EXISTS', unpack(keys)) == #keys
  for i = 1, #ids do
    local id = ids[i]
    seen = seen + 1
    last_ms, last_id = listed[2 * i], id
    local blob = nil
    if all_alive or redis.call('EXISTS', keys[i]) == 1 then blob = blobs[i] or pack_head(keys[i], id, KEYS[2]) end
    if blob and filtered then
      local h = cmsgpack.unpack(blob)
      if (ARGV[4] ~= '' and h.platform ~= ARGV[4]) or (ARGV[5] ~= '' and h.account ~= ARGV[5])
          or (ARGV[6] == '1' and h.unread_count == 0) then blob = nil end
    end
    if blob then
      heads[#heads + 1] = blob
      if #heads == want then break end
    end
  end
  if #ids < n then ended = 1 break end
end
local header
if #heads < 16 then header = string.char(0x90 + #heads) else header = string.char(0xdc, 0, #heads) end
return {header .. table.concat(heads), last_ms, last_id, ended}
"""
)
# Look at most this many list entries per page: a filter that matches little answers a short page with a
# cursor rather than hold Redis for the whole list.
PAGE_BUDGET = 500
# KEYS: head, heads. ARGV: conv id.
_MARK_READ = (
    _PACK_HEAD
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'unread', 0)
  pack_head(KEYS[1], ARGV[1], KEYS[2])
end
return 0
"""
)
_RANKED = [s for s, _ in sorted(STATUS_RANK.items(), key=lambda kv: kv[1])]


def _prefix(customer_id: str) -> str:
    return f"conv:{{{customer_id}}}"


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _platform(kind: type, value: Any) -> Any:
    """msgspec's decode hook: the heads hold one custom type, `Platform`; any other is refused the way
    msgspec's hooks refuse one (it turns the error into a validation error)."""
    if kind is Platform:
        return Platform(value)
    raise NotImplementedError(f"no decoding for {kind!r}")


# The page script's heads straight into `Conversation`s (numbers as times: seconds since the epoch).
_decode_heads = msgspec.msgpack.Decoder(list[Conversation], strict=False, dec_hook=_platform).decode


def _head(conv: str, raw: Any) -> Conversation | None:
    if b"p" not in raw or b"last" not in raw:
        return None
    lin = raw.get(b"lin")
    return Conversation(
        id=conv,
        platform=Platform(_s(raw[b"p"])),
        account=_s(raw[b"a"]),
        peer=_s(raw[b"peer"]),
        title=_s(raw[b"title"]),
        participants=decode_participants(raw[b"parts"]) if b"parts" in raw else (),
        last_message_at=from_ms(raw[b"last"]),
        last_message_preview=_s(raw.get(b"prev", b"")),
        unread_count=int(raw.get(b"unread", b"0")),
        last_inbound_at=from_ms(lin) if lin is not None else None,
    )


class RedisConversationStore(ConversationStore):
    page_budget = PAGE_BUDGET  # the most list entries one page looks at

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._record = redis.register_script(_RECORD)
        self._status = redis.register_script(_STATUS)
        self._mark_read = redis.register_script(_MARK_READ)
        self._page = redis.register_script(_PAGE)

    async def record(self, customer_id: str, records: Sequence[Recorded], now: datetime) -> int:
        p = _prefix(customer_id)
        oldest = ms(now) - CONVERSATION_RETENTION_SECONDS * 1000
        calls = []
        for r in records:
            c, m = r.key.id, r.message
            keys = [f"{p}:recent", f"{p}:h:{c}", f"{p}:m:{c}", f"{p}:t:{c}", f"{p}:s:{c}", f"{p}:heads"]
            args: list[str | int | bytes] = [
                c,
                m.message_id,
                encode_message(m),
                ms(m.sent_at),
                m.direction,
                r.key.platform.value,
                r.key.account,
                r.key.peer,
                r.title or "",
                encode_participants(r.participants) if r.participants else b"",
                preview(m),
                MAX_MESSAGES_PER_CONVERSATION,
                CONVERSATION_RETENTION_SECONDS,
                m.status or "",
                oldest,
            ]
            calls.append(self._record(keys=keys, args=args))
        async with translate_errors():
            # A send records one message: awaited as it is, without a task to gather it.
            added = [await calls[0]] if len(calls) == 1 else await asyncio.gather(*calls)
        return sum(int(a) for a in added)

    async def set_status(
        self, customer_id: str, platform: Platform, account: str, peer: str, message_id: str, status: str
    ) -> None:
        p, c = _prefix(customer_id), conversation_id(customer_id, platform, account, peer)
        async with translate_errors():
            await self._status(keys=[f"{p}:m:{c}", f"{p}:s:{c}"], args=[message_id, status, *_RANKED])

    async def recent(
        self,
        customer_id: str,
        *,
        platform: Platform | None,
        account: str | None,
        unread_only: bool,
        after: Position | None,
        limit: int,
    ) -> tuple[list[Conversation], Position | None]:
        p = _prefix(customer_id)
        args: list[str | int] = [
            f"{p}:h:",
            after[0] if after else "",
            after[1] if after else "",
            platform.value if platform is not None else "",
            account if account is not None else "",
            "1" if unread_only else "",
            limit + 1,
            self.page_budget,
        ]
        async with translate_errors():
            reply: Any = await self._page(keys=[f"{p}:recent", f"{p}:heads"], args=args)
        blob, last_ms, last_id, ended = reply
        found = _decode_heads(blob)
        if len(found) > limit:
            page = found[:limit]
            return page, (ms(page[-1].last_message_at), page[-1].id)
        if ended:
            return found, None
        return found, (int(float(last_ms)), _s(last_id))  # the budget ran out: go on from the last one looked at

    async def get(self, customer_id: str, conversation_id: str) -> Conversation | None:
        async with translate_errors():
            raw: Any = await self._redis.hgetall(f"{_prefix(customer_id)}:h:{conversation_id}")
        return _head(conversation_id, raw)

    async def messages(
        self, customer_id: str, conversation_id: str, before: Position | None, limit: int
    ) -> tuple[list[MessageView], Position | None]:
        p, c = _prefix(customer_id), conversation_id
        top = str(before[0]) if before else "+inf"
        picked: list[tuple[str, int]] = []
        offset = 0
        async with translate_errors():
            while len(picked) <= limit:
                batch: Any = await self._redis.zrevrangebyscore(
                    f"{p}:t:{c}", top, "-inf", start=offset, num=limit + 1, withscores=True
                )
                offset += len(batch)
                picked += [(_s(m), int(score)) for m, score in batch if before is None or (int(score), _s(m)) < before]
                if len(batch) < limit + 1:
                    break
            more = len(picked) > limit
            picked = picked[:limit]
            ids = [m for m, _ in picked]
            if not ids:
                return [], None
            bodies: Any
            statuses: Any
            bodies, statuses = await asyncio.gather(
                self._redis.hmget(f"{p}:m:{c}", ids), self._redis.hmget(f"{p}:s:{c}", ids)
            )
        messages = [
            decode_message(i, body, _s(status) if status is not None else None)
            for i, body, status in zip(ids, bodies, statuses, strict=True)
            if body is not None
        ]
        messages.reverse()
        oldest = picked[-1]
        return messages, (oldest[1], oldest[0]) if more else None

    async def note_receiving(self, customer_id: str, platform: Platform, business_id: str, now: datetime) -> None:
        async with translate_errors():
            await self._redis.set(
                f"{_prefix(customer_id)}:rx:{platform.value}:{business_id}", ms(now), ex=CONVERSATION_RETENTION_SECONDS
            )

    async def receiving(self, customer_id: str, platform: Platform, business_id: str) -> bool:
        async with translate_errors():
            return bool(await self._redis.exists(f"{_prefix(customer_id)}:rx:{platform.value}:{business_id}"))

    async def mark_read(self, customer_id: str, conversation_id: str) -> None:
        async with translate_errors():
            p = _prefix(customer_id)
            await self._mark_read(keys=[f"{p}:h:{conversation_id}", f"{p}:heads"], args=[conversation_id])
