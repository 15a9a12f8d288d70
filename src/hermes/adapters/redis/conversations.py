"""Conversations in Redis, every key of a customer under its hash tag (one cluster slot per customer).

Keys (`{cust}` is the hash tag, `{conv}` the conversation id):
- `conv:{cust}:list`: ZSET, the list itself, newest first: each member is a conversation's list entry (its id,
  then its head packed as one msgpack map) scored by the time (ms) of its newest message. The first page of
  the list, the one an agent polls, is one ZREVRANGE; nothing is looked up per conversation.
- `conv:{cust}:h:{conv}`: HASH, the conversation's head (platform, account, peer, title, participants,
  newest message time and preview, the peer's last message time, unread count).
- `conv:{cust}:v`: the list's version, a counter raised by every change to what the list shows.
- `conv:{cust}:m:{conv}`: HASH message id -> the message (msgpack); `...:t:{conv}` ZSET message id -> its
  time (ms), the order; `...:s:{conv}` HASH message id -> status of a sent message.

- `conv:{cust}:rx:{platform}:{business id}`: webhooks for that number reach this customer (90 days).

One script adds a message and updates the head and its list entry, so concurrent deliveries of one message
add it once and unread counts stay exact. A conversation keeps its newest `MAX_MESSAGES_PER_CONVERSATION`
messages; its keys expire 90 days after its last message, and the list forgets conversations idle that long.
Lists written before entries held the head (`conv:{cust}:recent`, ids only, with `conv:{cust}:heads`) are
rewritten once per deployment (`relist`); what an instance of that version still writes during a rolling
upgrade is moved by the customer's next message.
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

# Every conversation id has this length (`conversation_id`), so an entry is the id, then the packed head; and
# entries of equal time sort by id, as the list's order wants.
ID_LENGTH = len(conversation_id("", Platform.WHATSAPP, "", ""))
# A head as its list shows it: one msgpack map named as `Conversation`'s fields (times in seconds since the
# epoch). Every script that changes a head's fields calls this, which replaces the head's entry in the list.
_PACK_HEAD = f"""
local ID = {ID_LENGTH}
-- The head's entry in the list replaces the one it had (listed at `was`, its newest message time before the
-- change, or nothing for a new conversation).
local function pack_head(key, id, list, was)
  local h = redis.call('HMGET', key, 'p', 'a', 'peer', 'title', 'parts', 'last', 'prev', 'unread', 'lin')
  if not h[1] or not h[6] then return nil end
  local people = {{}}
  if h[5] then
    for _, p in ipairs(cmsgpack.unpack(h[5])) do people[#people + 1] = {{id = p[1], name = p[2]}} end
  end
  local entry = id .. cmsgpack.pack({{
    id = id, platform = h[1], account = h[2], peer = h[3], title = h[4], participants = people,
    last_message_at = tonumber(h[6]) / 1000, last_message_preview = h[7] or '', unread_count = tonumber(h[8] or '0'),
    last_inbound_at = h[9] and tonumber(h[9]) / 1000 or nil
  }})
  if was then
    for _, old in ipairs(redis.call('ZRANGEBYSCORE', list, was, was)) do
      if old ~= entry and string.sub(old, 1, ID) == id then redis.call('ZREM', list, old) end
    end
  end
  redis.call('ZADD', list, h[6], entry)
  return entry
end
"""
# Moves up to `n` of the newest ids of a list kept in the old form (`old`, ids only, with `heads` packed aside)
# into `list`, head by head, and drops the old keys once empty; returns how many heads moved, and whether the
# old list is gone. A head whose key expired is not carried over.
_RELIST_SOME = """
local function relist_some(old, heads, list, prefix, n)
  local moved = 0
  for _, id in ipairs(redis.call('ZREVRANGE', old, 0, n - 1)) do
    local key = prefix .. id
    if pack_head(key, id, list, redis.call('HGET', key, 'last')) then moved = moved + 1 end
    redis.call('ZREM', old, id)
  end
  if redis.call('EXISTS', old) == 0 then
    redis.call('DEL', heads)
    return moved, 1
  end
  return moved, 0
end
"""
# KEYS: list, head, messages, order, statuses, version, the old-form list and heads (see `relist`).
# ARGV: 1 conv id, 2 message id, 3 message, 4 time ms, 5 direction, 6 platform, 7 account, 8 peer,
#       9 title ('' keeps it), 10 participants ('' keeps them), 11 preview, 12 cap, 13 ttl, 14 status (''),
#       15 oldest time kept (ms), 16 head key prefix
_RECORD = (
    _PACK_HEAD
    + _RELIST_SOME
    + """
-- An instance of the version before lists held entries may still have written the old form (a rolling
-- upgrade): a write moves a bounded part of it, so the customer's list heals at its next messages.
if redis.call('EXISTS', KEYS[7]) == 1 then
  local moved = relist_some(KEYS[7], KEYS[8], KEYS[1], ARGV[16], 500)
  if moved > 0 then redis.call('INCR', KEYS[6]) end
end
if redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[3]) == 0 then return 0 end
local was = redis.call('HGET', KEYS[2], 'last')
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
end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[2], 'title', ARGV[9]) end
if ARGV[10] ~= '' then redis.call('HSET', KEYS[2], 'parts', ARGV[10]) end
if at >= tonumber(redis.call('HGET', KEYS[2], 'last')) then
  redis.call('HSET', KEYS[2], 'last', ARGV[4], 'prev', ARGV[11])
end
if ARGV[5] == 'in' then
  redis.call('HINCRBY', KEYS[2], 'unread', 1)
  if at > tonumber(redis.call('HGET', KEYS[2], 'lin') or '-1') then redis.call('HSET', KEYS[2], 'lin', ARGV[4]) end
end
pack_head(KEYS[2], ARGV[1], KEYS[1], was)
redis.call('INCR', KEYS[6])
for i = 1, 6 do redis.call('EXPIRE', KEYS[i], ARGV[13]) end
-- Conversations idle past the retention leave the list (a bounded number per write).
local idle = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[15], 'LIMIT', 0, 500)
if #idle > 0 then redis.call('ZREM', KEYS[1], unpack(idle)) end
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
# A page past a position, or filtered: the plain first page is one ZREVRANGE, in Python.
# KEYS: list. ARGV: 1 time (ms) of the position to continue past ('': from the newest), 2 its id,
# 3 platform ('': any), 4 account ('': any), 5 '1': unread only, 6 entries wanted, 7 most list entries to look at.
# Reply: the entries found, then the time and id of the last entry looked at, then 1 when the list ended
# before the entries wanted were found.
_PAGE = f"""
local ID = {ID_LENGTH}
local function below(a, b)  -- a < b byte by byte, as the list orders ids, whatever the server's locale
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local want, budget = tonumber(ARGV[6]), tonumber(ARGV[7])
local start = 0
if ARGV[1] ~= '' then
  -- Newest first, equal times by id descending: the entries at the position's time sit between these two
  -- ranks; the page starts at the first of them below the position's id.
  local lo = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
  local hi = redis.call('ZCOUNT', KEYS[1], ARGV[1], '+inf')
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if below(string.sub(redis.call('ZREVRANGE', KEYS[1], mid, mid)[1], 1, ID), ARGV[2]) then
      hi = mid
    else
      lo = mid + 1
    end
  end
  start = lo
end
local filtered = ARGV[3] ~= '' or ARGV[4] ~= '' or ARGV[5] == '1'
local chunk = want
if filtered then chunk = math.max(want, 100) end
local found, seen, ended = {{}}, 0, 0
local last = nil
while #found < want and seen < budget do
  local n = math.min(chunk, budget - seen)
  local entries = redis.call('ZREVRANGE', KEYS[1], start + seen, start + seen + n - 1)
  if #entries == 0 then ended = 1 break end
  for i = 1, #entries do
    local entry = entries[i]
    seen = seen + 1
    last = entry
    local keep = true
    if filtered then
      local h = cmsgpack.unpack(string.sub(entry, ID + 1))
      keep = not ((ARGV[3] ~= '' and h.platform ~= ARGV[3]) or (ARGV[4] ~= '' and h.account ~= ARGV[4])
          or (ARGV[5] == '1' and h.unread_count == 0))
    end
    if keep then
      found[#found + 1] = entry
      if #found == want then break end
    end
  end
  if #entries < n then ended = 1 break end
end
if last == nil then return {{found, '', '', 1}} end
return {{found, redis.call('ZSCORE', KEYS[1], last), string.sub(last, 1, ID), ended}}
"""
# KEYS: the old list (ids), the old packed heads, the list, its version.
# ARGV: 1 head key prefix, 2 most ids to move, 3 ttl.
# Moves the newest ids of the old list into the new one, head by head, and drops the old keys once moved.
# Reply: how many heads moved, then 1 when the old list is gone.
_RELIST = (
    _PACK_HEAD
    + _RELIST_SOME
    + """
local moved, gone = relist_some(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]))
if moved > 0 then
  redis.call('INCR', KEYS[4])
  for i = 3, 4 do
    if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[3]) end
  end
end
return {moved, gone}
"""
)
# Look at most this many list entries per page: a filter that matches little answers a short page with a
# cursor rather than hold Redis for the whole list.
PAGE_BUDGET = 500
# KEYS: head, list, version. ARGV: conv id.
_MARK_READ = (
    _PACK_HEAD
    + """
local unread = redis.call('HGET', KEYS[1], 'unread')
if unread and unread ~= '0' then
  redis.call('HSET', KEYS[1], 'unread', 0)
  pack_head(KEYS[1], ARGV[1], KEYS[2], redis.call('HGET', KEYS[1], 'last'))
  redis.call('INCR', KEYS[3])
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
    """msgspec's decode hook: the heads hold one custom type, `Platform`; any other is refused with a TypeError,
    which msgspec turns into a validation error."""
    if kind is Platform:
        return Platform(value)
    raise TypeError(f"no decoding for {kind!r}")


# List entries' heads straight into `Conversation`s (numbers as times: seconds since the epoch).
_decode_heads = msgspec.msgpack.Decoder(list[Conversation], strict=False, dec_hook=_platform).decode


def _decode_entries(entries: list[bytes]) -> list[Conversation]:
    """Each entry is an id, then its head packed: the heads behind one array header decode in one call."""
    n = len(entries)
    header = bytes((0x90 + n,)) if n < 16 else b"\xdc" + n.to_bytes(2, "big")
    return _decode_heads(header + b"".join([e[ID_LENGTH:] for e in entries]))


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
        self._relist = redis.register_script(_RELIST)

    async def record(self, customer_id: str, records: Sequence[Recorded], now: datetime) -> int:
        p = _prefix(customer_id)
        oldest = ms(now) - CONVERSATION_RETENTION_SECONDS * 1000
        calls = []
        for r in records:
            c, m = r.key.id, r.message
            keys = [
                f"{p}:list",
                f"{p}:h:{c}",
                f"{p}:m:{c}",
                f"{p}:t:{c}",
                f"{p}:s:{c}",
                f"{p}:v",
                f"{p}:recent",
                f"{p}:heads",
            ]
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
                f"{p}:h:",
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
        key = f"{_prefix(customer_id)}:list"
        async with translate_errors():
            if after is None and platform is None and account is None and not unread_only:
                # The first page of the whole list, the one an agent polls: its newest entries, as they are.
                entries: Any = await self._redis.zrevrange(key, 0, limit)
                ended, last_ms, last_id = True, b"", b""
            else:
                args: list[str | int] = [
                    after[0] if after else "",
                    after[1] if after else "",
                    platform.value if platform is not None else "",
                    account if account is not None else "",
                    "1" if unread_only else "",
                    limit + 1,
                    self.page_budget,
                ]
                entries, last_ms, last_id, ended = await self._page(keys=[key], args=args)
        found = _decode_entries(entries)
        if len(found) > limit:
            page = found[:limit]
            return page, (ms(page[-1].last_message_at), page[-1].id)
        if ended:
            return found, None
        return found, (int(float(last_ms)), _s(last_id))  # the budget ran out: go on from the last one looked at

    async def list_version(self, customer_id: str) -> str | None:
        async with translate_errors():
            version = await self._redis.get(f"{_prefix(customer_id)}:v")
        return None if version is None else _s(version)

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
            await self._mark_read(keys=[f"{p}:h:{conversation_id}", f"{p}:list", f"{p}:v"], args=[conversation_id])

    async def relist(self, customer_id: str, batch: int = 500) -> int:
        """Rewrite a list kept in the old form (ids, with the heads packed aside) as entries; returns how many
        conversations moved. Safe to repeat and to run while the customer's conversations change."""
        p = _prefix(customer_id)
        moved = 0
        async with translate_errors():
            while True:
                reply: Any = await self._relist(
                    keys=[f"{p}:recent", f"{p}:heads", f"{p}:list", f"{p}:v"],
                    args=[f"{p}:h:", batch, CONVERSATION_RETENTION_SECONDS],
                )
                moved += int(reply[0])
                if int(reply[1]):
                    return moved

    async def relist_all(self) -> int:
        """`relist` for every customer whose list is kept in the old form."""
        moved = 0
        async with translate_errors():
            async for raw in self._redis.scan_iter(match="conv:{*}:recent", count=500):
                key = _s(raw)
                moved += await self.relist(key[len("conv:{") : -len("}:recent")])
        return moved
