"""Inbox signals over Redis pub/sub, and wait slots in a sorted set.

Signals: one channel for every customer, and one subscription per instance that fans
each message out to the waiters of this process, so a thousand waits cost one Redis
connection, not a thousand blocked ones. A signal is published only for customers with
a wait open somewhere (their slot key exists): routing pays one EXISTS otherwise. While
the subscription is down, waiters read the inbox every second instead, and everyone reads
again when it comes back, so nothing published in between is missed for long.

Slots: `inbox_waits:{cust}`, members scored by their expiry in Redis's own clock (no skew
between instances); expired members are dropped before counting, so a crashed instance's
waits free themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from hermes.adapters.memory.inbox_signals import LocalListeners
from hermes.adapters.redis.client import RedisClient, translate_errors
from hermes.application.ports.inbox_signals import InboxListener, InboxSignals, WaitSlots

SIGNALS_CHANNEL = "hermes:inbox-signals"
_POLL_WITHOUT_FEED = 1.0
log = logging.getLogger("hermes.inbox")

# KEYS[1] the slots. ARGV: limit, lifetime ms, member. Redis's clock, so instances agree on expiry.
_HOLD = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
"""


def slots_key(customer_id: str) -> str:
    return f"inbox_waits:{{{customer_id}}}"


class _FeedListener(InboxListener):
    def __init__(self, signals: RedisInboxSignals, inner: InboxListener) -> None:
        self._signals = signals
        self._inner = inner

    async def wait(self, timeout: float) -> bool:
        if self._signals.feeding:
            return await self._inner.wait(timeout)
        await asyncio.sleep(max(0.0, min(timeout, _POLL_WITHOUT_FEED)))
        return True


class RedisInboxSignals(InboxSignals):
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self.listeners = LocalListeners()
        self.feeding = False

    async def notify(self, customer_id: str) -> None:
        async with translate_errors():
            if await self._redis.exists(slots_key(customer_id)):
                await self._redis.publish(SIGNALS_CHANNEL, customer_id)

    def listen(self, customer_id: str) -> AbstractAsyncContextManager[InboxListener]:
        return self._listen(customer_id)

    @asynccontextmanager
    async def _listen(self, customer_id: str) -> AsyncIterator[InboxListener]:
        async with self.listeners.listen(customer_id) as inner:
            yield _FeedListener(self, inner)

    async def run(self) -> None:
        """Follow the signals of every instance; runs for the life of the app."""
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(SIGNALS_CHANNEL)
                self.feeding = True
                self.listeners.wake_all()  # what was published while unsubscribed: everyone reads again
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        data = message["data"]
                        self.listeners.wake(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("inbox signals lost their Redis feed; waiters poll every second until it is back")
            finally:
                self.feeding = False
                self.listeners.wake_all()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(1.0)


class RedisWaitSlots(WaitSlots):
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._hold = redis.register_script(_HOLD)

    @asynccontextmanager
    async def hold(self, customer_id: str, limit: int, seconds: float) -> AsyncIterator[bool]:
        key = slots_key(customer_id)
        member = secrets.token_hex(8)
        async with translate_errors():
            held = await self._hold(keys=[key], args=[limit, int(seconds * 1000), member])
        if not held:
            yield False
            return
        try:
            yield True
        finally:
            # Given back at once; should this fail, the member lapses after `seconds` anyway.
            with contextlib.suppress(Exception):
                await self._redis.zrem(key, member)
