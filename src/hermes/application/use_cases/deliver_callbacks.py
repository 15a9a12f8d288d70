from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta

from hermes.application.inbox_views import camel, connection_event, entry_view
from hermes.application.ports.callbacks import CallbackSender, CallbackStore
from hermes.application.ports.clock import Clock
from hermes.application.ports.credentials import Cipher
from hermes.application.ports.inbound import Inbox
from hermes.application.use_cases.register_callback import callback_context
from hermes.domain.callbacks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Callback,
    Delivery,
    signature,
)
from hermes.domain.errors import HermesError
from hermes.domain.inbound import ConnectionEvent, InboundMessage, InboxEntry

log = logging.getLogger("hermes.callbacks")

EVENT = "inbound.message"
# Attempts per message before it is given up (it stays in the inbox): about 40 minutes of retries.
MAX_ATTEMPTS = 12


def backoff(failures: int) -> timedelta:
    """5 s, 10 s, 20 s, ... up to 10 minutes between attempts."""
    return timedelta(seconds=min(600, 5 * 2 ** max(0, failures - 1)))


@dataclass(frozen=True, slots=True)
class DeliveryPass:
    delivered: int
    more: bool  # the pass stopped at its batch size: run it again


@dataclass(slots=True)
class DeliverCallbacks:
    """Deliver a customer's new inbound messages to its callback, oldest first, at least once.

    Events about its connected accounts (`connection.needs_reauth`) travel the same
    way, as `{"type", "platform", "account", "timestamp"}`.

    The inbox is the outbox: the callback keeps a cursor into the inbox and moves it
    only past messages its URL accepted (any 2xx), so a crash or a restart resends
    rather than loses. Each message is one POST whose body is signed with the
    callback's secret and a timestamp; the entry id in `X-Hermes-Delivery` lets the
    receiver drop a repeat. A refused or failed delivery is retried with backoff
    (5 s doubling to 10 minutes); after 12 attempts the message is given up and the
    next one is tried. One instance at a time delivers a customer's messages (a lease),
    which keeps them in order. Every attempt is recorded for the customer to see.

    An attempt gets 10 seconds in all, whatever the receiver does (one that answers a
    byte at a time is cut off like one that never answers), and counts as failed. So
    that receivers that keep failing cannot take every delivery worker from the
    customers whose receivers work, at most `failing_share` passes for callbacks in
    failure run at once on an instance; the others wait for a later sweep.
    """

    store: CallbackStore
    inbox: Inbox
    sender: CallbackSender
    cipher: Cipher
    clock: Clock
    batch: int = 20
    timeout: float = 10.0
    failing_share: int = 4
    _unreadable: set[tuple[str, str]] = field(default_factory=set)
    _failing_running: int = field(default=0, init=False)

    async def __call__(self, customer_id: str, owner: str) -> DeliveryPass:
        callback = await self.store.get(customer_id)
        if callback is None:
            return DeliveryPass(0, False)
        if callback.next_attempt_at is not None and self.clock.now() < callback.next_attempt_at:
            return DeliveryPass(0, False)
        try:
            secret = self.cipher.decrypt(callback.secret_envelope, callback_context(customer_id)).decode()
        except ValueError:
            # Sealed under a key this instance does not hold: leave it to one that does (or a new registration).
            if (customer_id, callback.registration) not in self._unreadable:
                self._unreadable.add((customer_id, callback.registration))
                log.error("callback secret of %s cannot be decrypted with the configured keys", customer_id)
            return DeliveryPass(0, False)
        failing = int(callback.failures > 0)
        if failing and self._failing_running >= self.failing_share:
            return DeliveryPass(0, False)
        self._failing_running += failing  # counted before the first await, so the share holds under concurrency
        try:
            if not await self.store.lease(customer_id, owner, self.timeout * self.batch + 30):
                return DeliveryPass(0, False)
            try:
                return await self._deliver(callback, secret)
            finally:
                await self.store.unlease(customer_id, owner)
        finally:
            self._failing_running -= failing

    async def _deliver(self, callback: Callback, secret: str) -> DeliveryPass:
        entries, _ = await self.inbox.list(callback.customer_id, callback.cursor, self.batch)
        cursor, failures, next_attempt = callback.cursor, callback.failures, None
        delivered = 0
        stopped = False
        for entry in entries:
            if not isinstance(entry.item, InboundMessage | ConnectionEvent):
                cursor = entry.id  # status updates are read from the inbox, not pushed
                continue
            ok, delivery = await self._post(callback, secret, entry, failures + 1)
            if ok:
                delivered += 1
                cursor, failures = entry.id, 0
            else:
                failures += 1
                if failures >= MAX_ATTEMPTS:
                    delivery = replace(delivery, outcome="gave_up")
                    log.warning("callback of %s: gave up on %s", callback.customer_id, entry.id)
                    cursor, failures = entry.id, 0
                else:
                    next_attempt = self.clock.now() + backoff(failures)
                    stopped = True
            await self.store.record(callback.customer_id, delivery)
            if stopped:
                break
        if cursor != callback.cursor or failures != callback.failures or next_attempt != callback.next_attempt_at:
            await self.store.advance(callback.customer_id, callback.registration, cursor, failures, next_attempt)
        return DeliveryPass(delivered, not stopped and len(entries) >= self.batch)

    async def _post(self, callback: Callback, secret: str, entry: InboxEntry, attempt: int) -> tuple[bool, Delivery]:
        event = EVENT
        if isinstance(entry.item, ConnectionEvent):
            event = entry.item.event
            payload: dict[str, object] = {"customerId": callback.customer_id, **camel(connection_event(entry.item))}
        else:
            payload = {"event": EVENT, "customerId": callback.customer_id, "entry": camel(entry_view(entry))}
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = int(self.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: event,
            DELIVERY_HEADER: entry.id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(secret, timestamp, body),
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            # The sender has the same deadline; this one holds whatever a sender does.
            async with asyncio.timeout(self.timeout):
                status = await self.sender.post(callback.url, body, headers, self.timeout)
        except HermesError as exc:
            error = exc.detail
        except TimeoutError:
            error = f"the callback did not answer within {self.timeout:g} s"
        ok = status is not None and 200 <= status < 300
        if status is not None and not ok:
            error = f"the callback answered HTTP {status}"
        return ok, Delivery(
            at=self.clock.now(),
            entry_id=entry.id,
            message_id=entry.item.message_id,
            attempt=attempt,
            outcome="delivered" if ok else "failed",
            status=status,
            error=error,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
