"""GET /api/connections ahead of Litestar: the most frequent customer read, without routing or a request container.

An agent checks its connections before most sends, so this read is called about as often as the
tools themselves. Through the framework, the per-request dishka container and the route machinery
cost more than the read (one Redis round trip). Here the same use cases answer it: the customer is
resolved and metered exactly as `CustomerProvider` does, refusals are the API's problem details
(the same `EXCEPTION_HANDLERS` build them), and the body is the same `Connections` document.
The route stays declared on `CustomerApi`, so the OpenAPI document is unchanged; any other method
or path goes to the app.
"""

from __future__ import annotations

import logging
from typing import cast

import msgspec
from dishka import AsyncContainer
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from starlette.types import Send as RawSend

from hermes.application import request_context
from hermes.application.use_cases.list_accounts import ListAccounts
from hermes.application.use_cases.resolve_customer import ResolveCustomer
from hermes.domain.errors import HermesError
from hermes.entrypoints.http.auth import raw_api_key
from hermes.entrypoints.http.problems import EXCEPTION_HANDLERS, problem, respond_with
from hermes.entrypoints.http.raw_asgi import respond
from hermes.entrypoints.http.schemas import connections_document

PATH = "/api/connections"
log = logging.getLogger("hermes.http")
_encode = msgspec.json.Encoder().encode
_JSON = (b"content-type", b"application/json")


def connections_route(app: ASGIApp, container: AsyncContainer) -> ASGIApp:
    """Answer `GET /api/connections` here; everything else goes on to `app`."""
    use_cases: list[tuple[ResolveCustomer, ListAccounts]] = []

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] != PATH or scope["method"] != "GET":
            await app(scope, receive, send)
            return
        scope["path_template"] = PATH  # the request metrics' route label, as Litestar would set it
        if not use_cases:
            use_cases.append((await container.get(ResolveCustomer), await container.get(ListAccounts)))
        resolve, list_accounts = use_cases[0]
        try:
            customer = await resolve(raw_api_key(scope["headers"]))
            request_context.customer_id.set(customer.id)  # for this request's log lines
            accounts = await list_accounts(customer.id)
        except HermesError as exc:
            await respond_with(send, EXCEPTION_HANDLERS[HermesError](None, exc))  # type: ignore[arg-type,operator]
            return
        except Exception as exc:
            log.error("unexpected error on GET %s", PATH, exc_info=exc)
            await respond_with(
                send, problem(500, "Internal error", "something went wrong on our side; it has been logged")
            )
            return
        body = _encode(connections_document(customer.id, accounts))
        await respond(cast(RawSend, send), 200, body, [_JSON])

    return handle
