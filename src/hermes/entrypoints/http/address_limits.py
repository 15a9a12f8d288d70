"""The per-address limit on endpoints anyone may call without credentials, as one Litestar guard.

A route handler opts in with `opt={ADDRESS_LIMIT: AddressBucket...}` and
`guards=[limit_by_address]`; an address over its limit gets 429 problem+json
with `Retry-After` before the handler runs.
"""

from __future__ import annotations

from typing import Any

from dishka import AsyncContainer
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from hermes.application.use_cases.admit_anonymous_caller import AdmitAnonymousCaller
from hermes.domain.address_limits import AddressBucket
from hermes.entrypoints.http.client_address import TrustedProxies, scope_client_address

ADDRESS_LIMIT = "address_limit"


async def limit_by_address(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    bucket: AddressBucket | None = handler.opt.get(ADDRESS_LIMIT)
    # A CORS preflight carries nothing and is answered without work; browsers send one per real request.
    if bucket is None or connection.scope.get("method") == "OPTIONS":
        return
    container: AsyncContainer = connection.app.state.dishka_container
    admit = await container.get(AdmitAnonymousCaller)
    trusted = await container.get(TrustedProxies)
    await admit(bucket, scope_client_address(connection.scope, trusted))
