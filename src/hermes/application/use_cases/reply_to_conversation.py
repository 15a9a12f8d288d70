from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hermes.application.conversation_recorder import replying_in
from hermes.application.conversation_sends import ConversationSends
from hermes.application.ports.conversations import ConversationStore
from hermes.application.use_cases.read_conversation import not_found
from hermes.domain.conversations import Conversation, ConversationKey
from hermes.domain.errors import Actor, Conflict, Invalid, Sent
from hermes.domain.platform import Platform

CallAnother = Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class ReplySent:
    success: bool
    message_id: str
    platform: str


def _send(conversation: Conversation, text: str, reply_to: str | None) -> tuple[str, dict[str, Any]]:
    """The platform's own send tool, and its arguments, for a reply in this conversation."""
    platform, peer = conversation.platform, conversation.peer
    if platform is Platform.WHATSAPP:
        return "whatsapp_send_message", {"to": f"+{peer}", "message": text, "reply_to": reply_to}
    if platform is Platform.TELEGRAM:
        if reply_to is not None and not reply_to.isdigit():
            raise Invalid("reply_to must be a Telegram message id (digits)", {"reply_to": "digits"})
        return "telegram_send_message", {"chat_id": peer, "text": text, "reply_to": int(reply_to) if reply_to else None}
    if platform is Platform.DISCORD:
        return "discord_send_message", {"channel_id": peer, "content": text, "reply_to": reply_to}
    if platform is Platform.EMAIL:
        to = conversation.participants[0].id if conversation.participants else ""
        title = conversation.title
        subject = title if title.lower().startswith("re:") else f"Re: {title}"
        return "email_send", {"to": to, "subject": subject[:998], "body": text}
    raise Conflict(
        f"Hermes cannot send {platform.display_name} direct messages",
        fix=f"answer in the {platform.display_name} app",
        actor=Actor.OWNER,
        sent=Sent.NO,
    )


@dataclass(slots=True)
class ReplyToConversation:
    """Send a reply in a conversation, on its own platform and account, with the platform's own send tool.

    The send goes through the same checks as calling that tool directly; WhatsApp and Instagram
    refuse free-form replies more than 24 hours after the peer's last message (WhatsApp: use
    whatsapp_send_template instead). The reply shows in the conversation.
    """

    store: ConversationStore
    sends: ConversationSends

    async def __call__(
        self, customer_id: str, conversation_id: str, text: str, reply_to: str | None, call: CallAnother
    ) -> ReplySent:
        conversation = await self.store.get(customer_id, conversation_id)
        if conversation is None:
            raise not_found(conversation_id)
        key = ConversationKey(customer_id, conversation.platform, conversation.peer, conversation.account)
        if conversation.platform is Platform.INSTAGRAM:
            await self.sends.check_window(key, conversation.title)
        tool, arguments = _send(conversation, text, reply_to)
        token = replying_in.set(key)
        try:
            result = await call(tool, {k: v for k, v in arguments.items() if v is not None})
        finally:
            replying_in.reset(token)
        return ReplySent(True, str(result["message_id"]), conversation.platform.value)
