from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace

from hermes.application.conversation_recorder import ConversationRecorder
from hermes.application.ports.clock import Clock
from hermes.application.ports.inbound import InboundHandler, Inbox, UnroutedNumbers
from hermes.application.ports.platform_inbound import InboundSide, InboundSides, route_key
from hermes.application.ports.routing import AccountRoutes, RouteOwner
from hermes.application.ports.tools import EnvCredentials
from hermes.domain.audit import SINGLE_USER_ID
from hermes.domain.errors import Invalid
from hermes.domain.inbound import InboundChange, InboxItem
from hermes.domain.platform import Platform

log = logging.getLogger("hermes.inbound")


@dataclass(frozen=True, slots=True)
class RoutingReport:
    appended: int
    duplicates: int
    unrouted: int


@dataclass(slots=True)
class RouteInbound:
    """Route one acknowledged webhook batch to the customers and accounts it concerns.

    The platform's inbound side decodes the batch; every part of it is routed on its own by
    the account it names (WhatsApp's `metadata.phone_number_id` -> `wa_phone_id:*`), so a
    batch that holds several customers' accounts is split between them, and each item names
    the customer's account (`default`, `work`, ...) that received it: in the inbox, in its
    conversation and in the callback. The single-user
    deployment's own account (`WHATSAPP_DEFAULT_PHONE_NUMBER_ID`, say) routes to the
    single-user inbox. Messages already
    seen (same message id) and status updates already seen (same message id and status)
    in the last 7 days are dropped: Meta delivers at least once and retries for days.
    New items are appended to the customer's inbox (kept 90 days) and handed to the
    inbound handler. Items for numbers no customer owns are logged and counted, never
    retried. Email read from a customer's INBOX by the poller arrives already naming
    its customer and account, and is deduplicated by Message-ID the same way.
    """

    inbound: InboundSides
    routes: AccountRoutes
    inbox: Inbox
    unrouted: UnroutedNumbers
    handler: InboundHandler
    env: EnvCredentials
    clock: Clock
    conversations: ConversationRecorder | None = None

    async def __call__(self, platform: Platform, body: bytes) -> RoutingReport:
        side = self.inbound.inbound(platform)
        if side is None:
            raise Invalid(f"{platform.value} receives no events")
        changes = side.decode(body)
        owners: dict[tuple[str, str], RouteOwner | None] = {}
        batches: dict[str, list[InboxItem]] = {}
        lost: Counter[str] = Counter()
        for change in changes:
            if not change.items:
                continue
            known = (change.business_id, change.account)
            if known not in owners:
                owners[known] = await self._owner(platform, side, change)
            owner = owners[known]
            if owner is None:
                lost[change.business_id] += len(change.items)
            else:
                batches.setdefault(owner.customer_id, []).extend(_named(change.items, owner.account))
        now = self.clock.now()
        for business_id, count in lost.items():
            log.warning("inbound %s: %d item(s) for unrouted number %s dropped", platform.value, count, business_id)
            await self.unrouted.record(platform, business_id, count, now)
        appended = duplicates = 0
        for customer_id, items in batches.items():
            if self.conversations:  # first, and idempotent: a batch routed again after a failure records once
                await self.conversations.inbound(customer_id, items)
            fresh = await self.inbox.append(customer_id, items, now)
            appended += len(fresh)
            duplicates += len(items) - len(fresh)
            if fresh:
                await self.handler.handle(customer_id, fresh)
        return RoutingReport(appended, duplicates, sum(lost.values()))

    async def _owner(self, platform: Platform, side: InboundSide, change: InboundChange) -> RouteOwner | None:
        if side.polled:
            # The poller read this customer's own mailbox and names it.
            return RouteOwner(change.business_id, change.account)
        # First: a route to a customer (left from before the account was reserved) must not win.
        single = self.env.get(platform)
        if single is not None and side.account_id(single) == change.business_id:
            return RouteOwner(SINGLE_USER_ID)
        return await self.routes.owner(route_key(side, change.business_id))


def _named(items: tuple[InboxItem, ...], account: str) -> list[InboxItem]:
    """The items as received by the customer's account `account`."""
    return [item if item.account == account else replace(item, account=account) for item in items]
