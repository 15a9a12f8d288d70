"""What CallTool does around a send: the reply-window check before it, the conversation record after it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hermes.application.at_once import all_at_once
from hermes.application.conversation_recorder import SENDS, ConversationRecorder
from hermes.application.ports.clock import Clock
from hermes.application.ports.conversations import ConversationStore
from hermes.domain.conversations import DEFAULT_ACCOUNT, Conversation, ConversationKey, reply_window_expires_at
from hermes.domain.credentials import Credentials
from hermes.domain.errors import Actor, Conflict, HermesError, Sent
from hermes.domain.platform import Platform

log = logging.getLogger("hermes.conversations")

TEMPLATE_FIX = "send an approved template with whatsapp_send_template; free-form messages work again once they reply"


def window_closed(platform: Platform, peer: str, last_inbound: Any) -> Conflict:
    """The refusal of a free-form message outside the platform's 24-hour window (nothing was sent)."""
    since = (
        f"their last message was at {last_inbound.isoformat().replace('+00:00', 'Z')}"
        if last_inbound
        else "they have not written to this account"
    )
    if platform is Platform.WHATSAPP:
        return Conflict(
            f"WhatsApp accepts free-form messages to {peer} only within 24 hours of their last message, and {since}",
            fix=TEMPLATE_FIX,
            actor=Actor.AGENT,
            sent=Sent.NO,
        )
    return Conflict(
        f"{platform.display_name} accepts messages to {peer} only within 24 hours of their last message, and {since}",
        fix=f"{platform.display_name} has no template to reach them outside that window: wait until they write again",
        actor=Actor.NOBODY,
        sent=Sent.NO,
    )


# Business numbers remembered per (customer, account), at most this many: a guess for the next send's reads.
NUMBERS_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class WindowReads:
    """The reads a send's window check needs, issued before the credentials are opened: whether the number
    Hermes last saw this account send from receives webhooks, and the contact's conversation."""

    number: str
    receiving: bool
    conversation: Conversation | None


@dataclass(slots=True)
class ConversationSends:
    """Free-form WhatsApp messages (text, media) to a contact whose last message is more than 24 hours old, by
    that message's own timestamp, or who never wrote, are refused before WhatsApp is called, where Hermes
    receives that number's webhooks (it has routed one to this customer in the last 90 days; elsewhere it cannot
    know who wrote, and WhatsApp itself decides). Templates are always allowed. Every successful send to a peer
    is recorded in its conversation."""

    recorder: ConversationRecorder
    store: ConversationStore
    clock: Clock
    # (customer, account) -> the business number its credentials named at its last send. Not a secret (it is in
    # every webhook and Graph URL); it lets the next send read the window together with the credentials.
    _numbers: dict[tuple[str, str], str] = field(default_factory=dict, init=False)

    def early_reads(
        self, customer_id: str, tool: str, parsed: Any, account: str = DEFAULT_ACCOUNT
    ) -> Awaitable[WindowReads] | None:
        """The window reads to issue together with the credentials' (an awaitable of `WindowReads`), or None when
        this send has no window to check or its number is not known yet. `before` uses them when the
        credentials name the number they were read for; otherwise it reads again."""
        shape = SENDS.get(tool)
        if shape is None or not shape.free_form or shape.platform is not Platform.WHATSAPP:
            return None
        number = self._numbers.get((customer_id, account))
        if number is None:
            return None
        key = ConversationKey(customer_id, shape.platform, shape.peer(parsed, {}), account)
        return self._reads(key, number)

    async def _reads(self, key: ConversationKey, number: str) -> WindowReads:
        receiving, conversation = await self._window(key, number)
        return WindowReads(number, receiving, conversation)

    async def _window(self, key: ConversationKey, number: str) -> tuple[bool, Conversation | None]:
        # Both reads at once, so a batching store answers them in one round trip; the conversation counts
        # only where Hermes receives this number's webhooks (elsewhere it cannot know the window).
        receiving, conversation = await all_at_once(
            self.store.receiving(key.customer_id, key.platform, number), self.store.get(key.customer_id, key.id)
        )
        return receiving, conversation

    async def before(
        self,
        customer_id: str,
        tool: str,
        parsed: Any,
        credentials: Credentials | None,
        account: str = DEFAULT_ACCOUNT,
        early: WindowReads | None = None,
    ) -> None:
        shape = SENDS.get(tool)
        if shape is None or not shape.free_form or shape.platform is not Platform.WHATSAPP or credentials is None:
            return
        peer = shape.peer(parsed, {})
        key = ConversationKey(customer_id, shape.platform, peer, account)
        number = str(credentials.get("phoneNumberId", ""))
        if early is not None and early.number == number:
            receiving, conversation = early.receiving, early.conversation
        else:
            receiving, conversation = await self._window(key, number)
            self._remember(customer_id, account, number)
        if receiving:
            self._judge(key, f"+{peer}", conversation)

    def _remember(self, customer_id: str, account: str, number: str) -> None:
        key = (customer_id, account)
        if key not in self._numbers and len(self._numbers) >= NUMBERS_KEPT:
            self._numbers.pop(next(iter(self._numbers)))  # the first remembered goes
        self._numbers[key] = number

    async def check_window(self, key: ConversationKey, peer_label: str) -> None:
        self._judge(key, peer_label, await self.store.get(key.customer_id, key.id))

    def _judge(self, key: ConversationKey, peer_label: str, conversation: Conversation | None) -> None:
        last = conversation.last_inbound_at if conversation else None
        expires = reply_window_expires_at(key.platform, last)
        if expires is None or self.clock.now() >= expires:
            raise window_closed(key.platform, peer_label, last)

    async def after(
        self, customer_id: str, tool: str, parsed: Any, result: Mapping[str, Any], account: str = DEFAULT_ACCOUNT
    ) -> None:
        if tool not in SENDS:
            return
        try:
            await self.recorder.sent(customer_id, tool, parsed, result, account)
        except HermesError as exc:
            # The message went out: failing the call now would make the agent send it again.
            log.warning("could not record a %s send in its conversation: %s", tool, exc.detail)
