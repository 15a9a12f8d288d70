"""The background side of email inbound: each instance polls the registered INBOXes that fall due.

Bounded on every side: at most `concurrency` accounts are polled at once per instance
(a customer's slow or hostile server holds one slot, for one poll's deadline at most);
a new account's first poll falls at a random point of the first interval, so a restart
does not send every login at once; the registry is read once per interval, never
scanned. Which instance polls an account is settled by its lease (`PollMailbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random

from hermes.application import request_context
from hermes.application.ports.mailboxes import Mailboxes, PolledAccount
from hermes.application.use_cases.poll_mailbox import PollMailbox
from hermes.domain.errors import HermesError

log = logging.getLogger("hermes.inbound.email")


class MailboxPoller:
    def __init__(
        self,
        mailboxes: Mailboxes,
        poll: PollMailbox,
        *,
        holder: str,
        interval: float,
        concurrency: int,
        deadline: float,
        also: tuple[PolledAccount, ...] = (),
    ) -> None:
        self._mailboxes = mailboxes
        self._poll = poll
        self.holder = holder
        self._interval = interval
        self._deadline = deadline
        self._also = also  # accounts polled without a registration (the single-user account)
        self._concurrency = concurrency
        self._due: dict[PolledAccount, float] = {}  # account -> when it is next due (loop time)
        self._queue: list[tuple[float, PolledAccount]] = []  # (due, account), a heap; stale when _due differs
        self._running: set[PolledAccount] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        try:
            await self._schedule()
        finally:
            # Stopped or cancelled: polls in flight end now, and release their leases on the way out.
            for task in self._tasks:
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=5)

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        next_refresh = loop.time()
        while not self._stopping.is_set():
            now = loop.time()
            if now >= next_refresh:
                next_refresh = now + self._interval
                await self._refresh(now)
            queue = self._queue
            while queue and queue[0][0] <= now and len(self._running) < self._concurrency:
                at, account = heapq.heappop(queue)
                if self._due.get(account) != at or account in self._running:
                    continue  # rescheduled or dropped since it was queued
                self._running.add(account)
                name = f"hermes-mailbox-{account.customer_id}-{account.account}"
                task = asyncio.create_task(self._one(account), name=name)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            next_at = next_refresh
            if queue and len(self._running) < self._concurrency:
                next_at = min(next_at, queue[0][0])
            # Every slot taken: a finishing poll wakes the loop.
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.01, next_at - loop.time()))

    async def _refresh(self, now: float) -> None:
        try:
            members = set(await self._mailboxes.members()) | set(self._also)
        except HermesError as exc:
            log.warning("the list of polled mailboxes is unavailable (%s); polling those known", exc.detail)
            return
        for account in members - self._due.keys():
            self._plan(account, now + random.uniform(0, self._interval))  # noqa: S311 - spreading, not secrecy
        for account in self._due.keys() - members - self._running:
            del self._due[account]

    def _plan(self, account: PolledAccount, at: float) -> None:
        self._due[account] = at
        heapq.heappush(self._queue, (at, account))

    async def _one(self, account: PolledAccount) -> None:
        # Its own task: this poll's log lines name the account.
        request_context.request_id.set(f"mailbox-{random.getrandbits(32):08x}")
        request_context.customer_id.set(account.customer_id)
        loop = asyncio.get_running_loop()
        next_in = self._interval
        try:
            async with asyncio.timeout(self._deadline):
                outcome = await self._poll(account, self.holder)
            next_in = outcome.next_in
            if outcome.error is not None:
                log.warning(
                    "mailbox poll of account %s failed: %s; next try in %.0f s", account.account, outcome.error, next_in
                )
            elif outcome.queued:
                log.info("mailbox poll of account %s queued %d new message(s)", account.account, outcome.queued)
        except TimeoutError:
            log.warning("mailbox poll cut off after %.0f s; next try in %.0f s", self._deadline, next_in)
        except HermesError as exc:
            log.warning("mailbox poll failed: %s; next try in %.0f s", exc.detail, next_in)
        except Exception:
            log.exception("mailbox poll failed unexpectedly")
        finally:
            self._running.discard(account)
            if account in self._due:
                self._plan(account, loop.time() + next_in)
            self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
