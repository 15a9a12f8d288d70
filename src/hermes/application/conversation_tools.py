"""The conversation tools: one messaging surface over every platform's conversations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hermes.application.conversation_cursor import CURSOR_MAX_LENGTH
from hermes.application.conversation_views import plain
from hermes.application.ports.tools import ToolContext, ToolSpec
from hermes.application.tool_arguments import NEXT_CURSOR, checked, cursor_argument, limit_argument
from hermes.application.untrusted import UntrustedText
from hermes.application.use_cases import list_conversations as lc
from hermes.application.use_cases import read_conversation as rc
from hermes.application.use_cases.list_conversations import ListConversations
from hermes.application.use_cases.read_conversation import ReadConversation
from hermes.application.use_cases.reply_to_conversation import ReplyToConversation
from hermes.domain.audit import SINGLE_USER_ID
from hermes.domain.conversations import TWO_WAY_PLATFORMS
from hermes.domain.platform import Platform

_CURSOR = cursor_argument(CURSOR_MAX_LENGTH)
_ID = {"type": "string", "maxLength": 24, "description": "From conversations_list."}
_CONVERSATION_UNTRUSTED = (
    UntrustedText("conversations[]", ("title", "last_message_preview"), ("title",)),
    UntrustedText("conversations[].participants[]", ("name",), ("id",)),
)
_MESSAGES_UNTRUSTED = (
    UntrustedText("conversation", ("title", "last_message_preview"), ("title",)),
    UntrustedText("conversation.participants[]", ("name",), ("id",)),
    UntrustedText("messages[]", ("text",), ("sender",)),
    UntrustedText("messages[].media", ("caption", "filename"), ("sender",)),
)


def _customer(context: ToolContext) -> str:
    return context.customer_id or SINGLE_USER_ID


@dataclass(slots=True)
class ConversationsListTool:
    list_conversations: ListConversations
    spec: ToolSpec = field(
        default=ToolSpec(
            name="conversations_list",
            platform=None,
            title="List conversations",
            description="All platforms, newest first, with unread count and can_reply (24 h windows).",
            input_schema={
                "type": "object",
                "properties": {
                    "platform": {"enum": [p.value for p in TWO_WAY_PLATFORMS], "description": "Only this one."},
                    "account": {"type": "string", "pattern": lc.ACCOUNT_PATTERN, "description": "Account name."},
                    "unread_only": {"type": "boolean", "description": "Only unread"},
                    "cursor": _CURSOR,
                    "limit": limit_argument(lc.DEFAULT_LIMIT, lc.MAX_LIMIT),
                },
                "additionalProperties": False,
            },
            output_schema={
                "type": "object",
                "properties": {
                    "conversations": {"type": "array", "items": {"type": "object"}},
                    "next_cursor": NEXT_CURSOR,
                },
                "required": ["conversations", "next_cursor"],
            },
            read_only=True,
            idempotent=True,
            open_world=False,
            untrusted=_CONVERSATION_UNTRUSTED,
        )
    )

    def parse(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        return checked(self.spec.name, self.spec.input_schema, arguments)

    def target(self, parsed: Any) -> str | None:
        return None

    async def run(self, parsed: Any, context: ToolContext) -> dict[str, Any]:
        page = await self.list_conversations(
            _customer(context),
            Platform(parsed["platform"]) if parsed["platform"] else None,
            parsed["account"],
            bool(parsed["unread_only"]),
            parsed["cursor"],
            parsed["limit"],
        )
        return {"conversations": plain(page.conversations), "next_cursor": page.next_cursor}


@dataclass(slots=True)
class ConversationReadTool:
    read_conversation: ReadConversation
    spec: ToolSpec = field(
        default=ToolSpec(
            name="conversation_read",
            platform=None,
            title="Read a conversation",
            description="Latest messages, oldest first; next_cursor pages back. Marks it read.",
            input_schema={
                "type": "object",
                "properties": {
                    "conversation_id": _ID,
                    "cursor": _CURSOR,
                    "limit": limit_argument(rc.DEFAULT_LIMIT, rc.MAX_LIMIT),
                },
                "required": ["conversation_id"],
                "additionalProperties": False,
            },
            output_schema={
                "type": "object",
                "properties": {
                    "conversation": {"type": "object"},
                    "messages": {"type": "array", "items": {"type": "object"}},
                    "next_cursor": NEXT_CURSOR,
                },
                "required": ["conversation", "messages", "next_cursor"],
            },
            read_only=False,  # it marks the conversation read
            idempotent=True,
            open_world=False,
            untrusted=_MESSAGES_UNTRUSTED,
        )
    )

    def parse(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        return checked(self.spec.name, self.spec.input_schema, arguments)

    def target(self, parsed: Any) -> str | None:
        return str(parsed["conversation_id"])

    async def run(self, parsed: Any, context: ToolContext) -> dict[str, Any]:
        read = await self.read_conversation(
            _customer(context), parsed["conversation_id"], parsed["cursor"], parsed["limit"]
        )
        return {
            "conversation": plain(read.conversation),
            "messages": plain(read.messages),
            "next_cursor": read.next_cursor,
        }


@dataclass(slots=True)
class ConversationReplyTool:
    reply: ReplyToConversation
    spec: ToolSpec = field(
        default=ToolSpec(
            name="conversation_reply",
            platform=None,
            title="Reply in a conversation",
            description="Reply in a conversation, on its platform and account.",
            input_schema={
                "type": "object",
                "properties": {
                    "conversation_id": _ID,
                    "text": {"type": "string", "minLength": 1, "maxLength": 4096, "description": "Message text"},
                    "reply_to": {"type": "string", "maxLength": 512, "description": "A message_id to quote."},
                },
                "required": ["conversation_id", "text"],
                "additionalProperties": False,
            },
            output_schema={
                "type": "object",
                "properties": {
                    "success": {"type": "boolean"},
                    "message_id": {"type": "string"},
                    "platform": {"type": "string"},
                },
                "required": ["success", "message_id", "platform"],
            },
            open_world=True,
        )
    )

    def parse(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        return checked(self.spec.name, self.spec.input_schema, arguments)

    def target(self, parsed: Any) -> str | None:
        return str(parsed["conversation_id"])

    async def run(self, parsed: Any, context: ToolContext) -> dict[str, Any]:
        assert context.call is not None  # CallTool passes it to every tool
        sent = await self.reply(
            _customer(context), parsed["conversation_id"], parsed["text"], parsed["reply_to"], context.call
        )
        return dict(plain(sent))
