"""The background side of inbound: the queue consumer that routes acknowledged webhooks, and the
dispatcher that delivers customers' callbacks. Each instance runs one of each, started and
stopped with the app (`run_inbound`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from hermes.application import request_context
from hermes.application.ports.callbacks import CallbackStore
from hermes.application.ports.inbound import InboundHandler, InboundQueue, QueuedEvent
from hermes.application.use_cases.deliver_callbacks import DeliverCallbacks
from hermes.application.use_cases.route_inbound import RouteInbound
from hermes.domain.errors import HermesError, Invalid
from hermes.domain.inbound import ConnectionEvent, InboundMessage, InboxEntry

log = logging.getLogger("hermes.inbound")

# Routing yields to the webhook's acks: while the event loop is this busy (seconds it takes a
# yielded task to run again), the consumer pauses between batches and lets the queue absorb the
# burst, which it drains as soon as the load falls.
_BUSY_LAG = 0.004
_BUSY_PAUSE = 0.02


def new_request_id() -> str:
    return secrets.token_hex(8)


def consumer_name() -> str:
    """Unique per process: a restarted instance must not inherit the dead one's pending entries by name."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


async def _loop_lag() -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.sleep(0)
    return loop.time() - started


class InboundWorker:
    """Takes webhook events from the queue, routes each (`RouteInbound`) and acknowledges it only then.

    A malformed body can never be routed: it goes to the dead letters at once. Any other
    failure leaves the event in the queue, which hands it out again later and moves it to
    the dead letters after `MAX_DELIVERIES` attempts.
    """

    def __init__(
        self,
        queue: InboundQueue,
        route: RouteInbound,
        *,
        consumer: str,
        batch: int = 64,
        wait: float = 1.0,
        routing_delay: float = 0.0,
    ) -> None:
        self._queue = queue
        self._route = route
        self.consumer = consumer
        self._batch = batch
        self._wait = wait
        self._routing_delay = routing_delay
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                events = await self._queue.take(self.consumer, self._batch, self._wait)
                failures = 0
            except Exception as exc:
                failures += 1
                if failures == 1 or failures % 60 == 0:
                    detail = exc.detail if isinstance(exc, HermesError) else f"{type(exc).__name__}: {exc}"
                    log.warning("inbound queue unavailable (%s); retrying", detail)
                await self._pause(min(5.0, 0.2 * 2 ** min(failures, 5)))
                continue
            if not events:
                continue
            if self._routing_delay:
                # Test hook (HERMES_TEST_ROUTING_DELAY_MS): widens the window between ack and routing.
                await asyncio.sleep(self._routing_delay)
            done = await asyncio.gather(*(self._handle(e) for e in events))
            try:
                await self._queue.ack([e.id for e, ok in zip(events, done, strict=True) if ok])
            except HermesError as exc:
                # They will be handed out again; the inbox's dedupe makes the repeat harmless.
                log.warning("could not acknowledge %d routed event(s): %s", sum(done), exc.detail)
            if await _loop_lag() > _BUSY_LAG:
                await self._pause(_BUSY_PAUSE)

    async def _handle(self, event: QueuedEvent) -> bool:
        # Each event runs in its own task (gather): its log lines carry the queue's event id.
        request_context.request_id.set(f"event-{event.id}")
        try:
            await self._route(event.platform, event.body)
            return True
        except Invalid as exc:
            log.error("inbound event %s cannot be routed, moved to the dead letters: %s", event.id, exc.detail)
            with contextlib.suppress(HermesError):
                await self._queue.dead_letter(event, exc.detail)
            return False
        except Exception as exc:
            reason = exc.detail if isinstance(exc, HermesError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, HermesError):
                log.exception("routing inbound event %s failed (delivery %d)", event.id, event.deliveries)
            else:
                log.warning("routing inbound event %s failed (delivery %d): %s", event.id, event.deliveries, reason)
            with contextlib.suppress(HermesError):
                await self._queue.fail(event, reason)
            return False

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def stop(self) -> None:
        self._stopping.set()


class CallbackWorker(InboundHandler):
    """Delivers customers' callbacks: at once for a customer whose inbox just grew, and for every
    customer with a callback on each sweep (retries that fell due, work another instance left)."""

    def __init__(
        self,
        store: CallbackStore,
        deliver: DeliverCallbacks,
        *,
        owner: str,
        sweep_every: float = 5.0,
        concurrency: int = 16,
        backlog: Callable[[int], None] | None = None,
    ) -> None:
        self._store = store
        self._backlog = backlog
        self._deliver = deliver
        self._owner = owner
        self._sweep_every = sweep_every
        self._limit = asyncio.Semaphore(concurrency)
        self._known: set[str] = set()  # customers with a callback, as of the last sweep
        self._woken: set[str] = set()
        self._running: set[str] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, customer_id: str, entries: Sequence[InboxEntry]) -> None:
        if customer_id in self._known and any(isinstance(e.item, InboundMessage | ConnectionEvent) for e in entries):
            self._woken.add(customer_id)
            self._wake.set()

    def watch(self, customer_id: str) -> None:
        """A callback was registered here: deliver to it from now on without waiting for the sweep."""
        self._known.add(customer_id)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while not self._stopping.is_set():
            if loop.time() >= next_sweep:
                next_sweep = loop.time() + self._sweep_every
                try:
                    self._known = set(await self._store.customers())
                    self._woken |= self._known
                except HermesError as exc:
                    log.warning("callback sweep skipped: %s", exc.detail)
            for customer_id in list(self._woken - self._running):
                self._woken.discard(customer_id)
                self._running.add(customer_id)
                task = asyncio.create_task(self._pass(customer_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if self._backlog is not None:
                self._backlog(len(self._woken) + len(self._running))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_sweep - loop.time()))
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)

    async def _pass(self, customer_id: str) -> None:
        # Its own task: the delivery's log lines (and the POSTs, as X-Request-Id) carry this id.
        request_context.request_id.set(f"callbacks-{new_request_id()}")
        request_context.customer_id.set(customer_id)
        try:
            async with self._limit:
                result = await self._deliver(customer_id, self._owner)
            if result.more:
                self._woken.add(customer_id)
        except HermesError as exc:
            log.warning("callback delivery for %s paused: %s", customer_id, exc.detail)
        except Exception:
            log.exception("callback delivery for %s failed unexpectedly", customer_id)
        finally:
            self._running.discard(customer_id)
            self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()


@asynccontextmanager
async def run_inbound(inbound: InboundWorker, callbacks: CallbackWorker) -> AsyncIterator[None]:
    """Run both workers for the app's lifetime; on the way out, let in-flight work finish (10 s at most)."""
    tasks = [
        asyncio.create_task(inbound.run(), name="hermes-inbound"),
        asyncio.create_task(callbacks.run(), name="hermes-callbacks"),
    ]
    try:
        yield
    finally:
        inbound.stop()
        callbacks.stop()
        _, pending = await asyncio.wait(tasks, timeout=12)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
