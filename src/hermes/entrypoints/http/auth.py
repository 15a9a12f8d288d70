"""Who is calling: a customer's API key (x-api-key or Bearer) or the operator's admin token."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

from dishka import Provider, Scope, provide
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from hermes.application import request_context
from hermes.application.use_cases.resolve_customer import ResolveCustomer
from hermes.domain.customer import Customer
from hermes.domain.errors import Unauthorized


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def api_key_of(headers: Any) -> str | None:
    return headers.get("x-api-key") or bearer_token(headers.get("authorization"))


def raw_api_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """`api_key_of` over an ASGI scope's raw headers: the first x-api-key, else the first Authorization's bearer
    token (for the routes answered ahead of Litestar)."""
    api_key = authorization = None
    for name, value in headers:
        if name == b"x-api-key" and api_key is None:
            api_key = value.decode("latin-1")
        elif name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
    return api_key or bearer_token(authorization)


class CustomerProvider(Provider):
    """The request's customer, resolved and metered once per request (the seed's meterMiddleware)."""

    @provide(scope=Scope.REQUEST)
    async def customer(self, request: Request, resolve: ResolveCustomer) -> Customer:  # type: ignore[type-arg]
        customer = await resolve(api_key_of(request.headers))
        request_context.customer_id.set(customer.id)  # for this request's log lines
        return customer


def admin_guard(admin_token: str | None) -> Any:
    expected = (admin_token or "").encode()

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        given = (bearer_token(connection.headers.get("authorization")) or "").encode()
        # An unset admin token disables the operator API rather than accepting an empty one.
        if not expected or not hmac.compare_digest(given, expected):
            raise Unauthorized("missing or invalid admin token")

    return guard
