"""Inbound handlers (the seed's handleInbound): told about each entry newly added to a customer's inbox."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from hermes.application.ports.inbound import InboundHandler
from hermes.application.ports.inbox_signals import InboxSignals
from hermes.domain.errors import HermesError
from hermes.domain.inbound import InboundMessage, InboxEntry

log = logging.getLogger("hermes.inbound")


class LoggingInboundHandler(InboundHandler):
    """The default: one debug line per new message (ids and type only, never the text).

    Debug, not info: a line per message at the production level costs the webhook path CPU and
    tells an operator nothing the inbox and the queue metrics do not.
    """

    async def handle(self, customer_id: str, entries: Sequence[InboxEntry]) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        for entry in entries:
            if isinstance(entry.item, InboundMessage):
                log.debug(
                    "inbound %s %s message %s for %s",
                    entry.item.platform.value,
                    entry.item.type,
                    entry.item.message_id,
                    customer_id,
                )


@dataclass(slots=True)
class InboundHandlers(InboundHandler):
    """Several handlers, each told in turn."""

    handlers: Sequence[InboundHandler]

    async def handle(self, customer_id: str, entries: Sequence[InboxEntry]) -> None:
        for handler in self.handlers:
            await handler.handle(customer_id, entries)


@dataclass(slots=True)
class InboxWaitersHandler(InboundHandler):
    """Wakes the customer's `inbox_wait` calls on every instance.

    The entries are already stored, so a failed signal is logged, not raised: routing the
    event again would find them all duplicates, and a waiter still reads them on its next call.
    """

    signals: InboxSignals

    async def handle(self, customer_id: str, entries: Sequence[InboxEntry]) -> None:
        try:
            await self.signals.notify(customer_id)
        except HermesError as exc:
            log.warning("could not signal inbox waiters of %s: %s", customer_id, exc.detail)
