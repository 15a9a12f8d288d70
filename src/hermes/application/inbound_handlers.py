"""Inbound handlers (the seed's handleInbound): told about each entry newly added to a customer's inbox."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from hermes.application.ports.inbound import InboundHandler
from hermes.domain.inbound import InboundMessage, InboxEntry

log = logging.getLogger("hermes.inbound")


class LoggingInboundHandler(InboundHandler):
    """The default: one log line per new message (ids and type only, never the text)."""

    async def handle(self, customer_id: str, entries: Sequence[InboxEntry]) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        for entry in entries:
            if isinstance(entry.item, InboundMessage):
                log.info(
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
