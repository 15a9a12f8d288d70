"""GET /api/conversations ahead of Litestar: the conversation list an agent polls, without routing or a request
container.

An agent that waits for replies reads this list again and again; through the framework, routing, parameter
parsing and the per-request dishka container cost about as much as the read itself (one Redis command). And
between two messages that agent gets the same page every time: a page rendered here is kept and sent again
while the customer's list keeps its version (one Redis GET, read before the page) and no reply window closes
on it (`RenderedPages`); any change, through any instance, is seen at the next call. Here
the same use cases answer it, as `connections_route` answers GET /api/connections: the customer is resolved
and metered as `CustomerProvider` does, refusals are the API's problem details (the same `EXCEPTION_HANDLERS`
build them) and the body is the route's own `ConversationsBody`. Only queries this module reads exactly as
the route's declaration does are answered here (known parameters, each once, each valid); any other query,
method or path goes on to the app untouched, so every 400 is the framework's own. The route stays declared
on `ConversationsApi`, so the OpenAPI document is unchanged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qsl

import msgspec
from dishka import AsyncContainer
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from starlette.types import Send as RawSend

from hermes.application import request_context
from hermes.application.conversation_cursor import CURSOR_PATTERN
from hermes.application.use_cases import list_conversations as lc
from hermes.application.use_cases.list_conversations import ListConversations, RenderedPages
from hermes.application.use_cases.resolve_customer import ResolveCustomer
from hermes.domain.conversations import ConversationView
from hermes.domain.errors import HermesError
from hermes.domain.platform import Platform
from hermes.entrypoints.http.auth import raw_api_key
from hermes.entrypoints.http.camel import camel_twin
from hermes.entrypoints.http.conversations_api import UNREAD_ONLY, ConversationsBody
from hermes.entrypoints.http.problems import EXCEPTION_HANDLERS, problem, respond_with
from hermes.entrypoints.http.raw_asgi import respond
from hermes.entrypoints.settings import Settings

PATH = "/api/conversations"
log = logging.getLogger("hermes.http")
_encode = msgspec.json.Encoder().encode
_JSON = (b"content-type", b"application/json")
_CURSOR = re.compile(CURSOR_PATTERN)
_ACCOUNT = re.compile(lc.ACCOUNT_PATTERN)
_ITEM: Callable[..., Any] = camel_twin(ConversationView)  # the wire form of one conversation in `ConversationsBody`
_LIMIT = re.compile(r"[1-9][0-9]{0,2}")  # plain digits; a sign or a leading zero goes to the framework


class _Query(msgspec.Struct):
    platform: Platform | None = None
    account: str | None = None
    unread_only: bool = False
    cursor: str | None = None
    limit: int | None = None


def _query(raw: bytes) -> _Query | None:
    """The list's parameters, or None when the query holds anything else (the framework then answers)."""
    query = _Query()
    if not raw:
        return query
    seen: set[str] = set()
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return None
        seen.add(name)
        if name == "platform" and _declared(value):
            query.platform = Platform(value)
        elif name == "account" and _ACCOUNT.match(value):
            query.account = value
        elif name == UNREAD_ONLY and value in ("true", "false"):
            query.unread_only = value == "true"
        elif name == "cursor" and _CURSOR.match(value):
            query.cursor = value
        elif name == "limit" and _LIMIT.fullmatch(value) and int(value) <= lc.MAX_LIMIT:
            query.limit = int(value)
        else:
            return None
    return query


def _declared(name: str) -> bool:
    try:
        Platform(name)
    except ValueError:
        return False
    return True


def conversations_route(app: ASGIApp, container: AsyncContainer) -> ASGIApp:
    """Answer `GET /api/conversations` here; everything else goes on to `app`."""
    use_cases: list[tuple[ResolveCustomer, ListConversations]] = []
    pages: list[RenderedPages[bytes]] = []

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] != PATH or scope["method"] != "GET":
            await app(scope, receive, send)
            return
        query = _query(scope["query_string"])
        if query is None:
            await app(scope, receive, send)
            return
        scope["path_template"] = PATH  # the request metrics' route label, as Litestar would set it
        if not use_cases:
            use_cases.append((await container.get(ResolveCustomer), await container.get(ListConversations)))
            pages.append(RenderedPages((await container.get(Settings)).conversation_pages_kept))
        (resolve, list_conversations), kept = use_cases[0], pages[0]
        try:
            customer = await resolve(raw_api_key(scope["headers"]))
            request_context.customer_id.set(customer.id)  # for this request's log lines
            raw = scope["query_string"].decode("latin-1")
            # Read before the page (see RenderedPages); not at all where no page is kept.
            version = await list_conversations.version(customer.id) if kept.size else None
            now = list_conversations.clock.now()
            body = kept.get(customer.id, raw, version, now)
            if body is None:
                # Each conversation made straight in its wire form (the body's own item Struct), not made as a
                # view and converted: on a page rendered afresh that conversion cost as much as the Redis read.
                listed, cursor = await list_conversations.page(
                    _ITEM, customer.id, query.platform, query.account, query.unread_only, query.cursor, query.limit
                )
                body = _encode(ConversationsBody(conversations=listed, next_cursor=cursor))
                kept.put(customer.id, raw, version, listed, now, body)
        except HermesError as exc:
            await respond_with(send, EXCEPTION_HANDLERS[HermesError](None, exc))  # type: ignore[arg-type,operator]
            return
        except Exception as exc:
            log.error("unexpected error on GET %s", PATH, exc_info=exc)
            await respond_with(
                send, problem(500, "Internal error", "something went wrong on our side; it has been logged")
            )
            return
        await respond(cast(RawSend, send), 200, body, [_JSON])

    return handle
