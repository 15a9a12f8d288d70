"""Conversations over REST: the twins of conversations_list, conversation_read and conversation_reply."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, get, post
from litestar.params import JSONBody, Parameter, PathParameter, QueryParameter

from hermes.application import request_context
from hermes.application.conversation_cursor import CURSOR_MAX_LENGTH, CURSOR_PATTERN
from hermes.application.use_cases import list_conversations as lc
from hermes.application.use_cases import read_conversation as rc
from hermes.application.use_cases.call_tool import Caller, CallTool
from hermes.application.use_cases.list_conversations import ConversationPage, ListConversations
from hermes.application.use_cases.read_conversation import ConversationMessages, ReadConversation
from hermes.application.use_cases.reply_to_conversation import ReplySent, ReplyToConversation
from hermes.domain.customer import Customer
from hermes.domain.errors import Invalid
from hermes.domain.platform import Platform
from hermes.entrypoints.http.camel import camel_twin, projected
from hermes.entrypoints.http.customer_api import CUSTOMER_SECURITY
from hermes.entrypoints.http.problems import problem_responses
from hermes.entrypoints.http.schemas import live_platform_names

ConversationsBody = camel_twin(ConversationPage)
UNREAD_ONLY = "unreadOnly"  # the query parameter's name (camelCase, as the API's fields)
ConversationBody = camel_twin(ConversationMessages)
ReplySentBody = camel_twin(ReplySent)

Cursor = Annotated[
    str | None,
    Parameter(description="nextCursor of the previous page", pattern=CURSOR_PATTERN, max_length=CURSOR_MAX_LENGTH),
]
ConversationId = Annotated[
    str, PathParameter(description="conversationId from the list", pattern=rc.CONVERSATION_ID_PATTERN)
]


class ReplyBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=4096, description="the message")]
    reply_to: Annotated[str, msgspec.Meta(max_length=512, description="messageId of a message to quote")] | None = None


class ConversationsApi(Controller):
    path = "/api/conversations"
    tags = ["conversations"]
    security = CUSTOMER_SECURITY

    @get("/", description=ListConversations.__doc__, responses=problem_responses())
    @inject
    async def conversations(
        self,
        customer: FromDishka[Customer],
        list_conversations: FromDishka[ListConversations],
        platform: Annotated[
            str | None,
            Parameter(description="only this platform", schema_extra={"enum": live_platform_names()}),
        ] = None,
        account: Annotated[str | None, Parameter(description="only this account", pattern=lc.ACCOUNT_PATTERN)] = None,
        unread_only: Annotated[bool, QueryParameter(name=UNREAD_ONLY, description="only unread ones")] = False,
        cursor: Cursor = None,
        limit: Annotated[int | None, Parameter(description="page size, default 20", ge=1, le=lc.MAX_LIMIT)] = None,
    ) -> ConversationsBody:  # type: ignore[valid-type]
        page = await list_conversations(customer.id, _platform(platform), account, unread_only, cursor, limit)
        return projected(page)

    @get("/{conversation_id:str}", description=ReadConversation.__doc__, responses=problem_responses(404))
    @inject
    async def conversation(
        self,
        conversation_id: ConversationId,
        customer: FromDishka[Customer],
        read_conversation: FromDishka[ReadConversation],
        cursor: Cursor = None,
        limit: Annotated[int | None, Parameter(description="page size, default 20", ge=1, le=rc.MAX_LIMIT)] = None,
    ) -> ConversationBody:  # type: ignore[valid-type]
        return projected(await read_conversation(customer.id, conversation_id, cursor, limit))

    @post(
        "/{conversation_id:str}/messages",
        status_code=201,
        description=ReplyToConversation.__doc__,
        responses=problem_responses(404, 409, 413, 502),
    )
    @inject
    async def reply(
        self,
        conversation_id: ConversationId,
        data: JSONBody[ReplyBody],
        customer: FromDishka[Customer],
        call: FromDishka[CallTool],
    ) -> ReplySentBody:  # type: ignore[valid-type]
        request_context.tool.set("conversation_reply")
        arguments: dict[str, Any] = {"conversation_id": conversation_id, "text": data.text, "reply_to": data.reply_to}
        result = await call(Caller(customer), "conversation_reply", arguments)
        return projected(ReplySent(**result))


def _platform(name: str | None) -> Platform | None:
    if name is None:
        return None
    try:
        return Platform(name)
    except ValueError:
        known = ", ".join(live_platform_names())
        raise Invalid(f"platform must be one of {known}", {"platform": f"must be one of {known}"}) from None
