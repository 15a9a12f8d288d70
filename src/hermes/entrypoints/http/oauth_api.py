"""The OAuth clients a customer has authorized: list them, revoke one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import unquote

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, delete, get
from litestar.params import PathParameter

from hermes.application.use_cases.list_authorized_clients import ListAuthorizedClients
from hermes.application.use_cases.revoke_authorized_client import RevokeAuthorizedClient
from hermes.domain.customer import Customer
from hermes.entrypoints.http.problems import problem_responses
from hermes.entrypoints.http.schemas import Camel


class AuthorizedClientView(Camel):
    client_id: str
    client_name: str
    authorized_at: datetime
    last_used_at: datetime
    grants: int


class AuthorizedClients(Camel):
    customer_id: str
    clients: list[AuthorizedClientView]


class RevokedClient(Camel):
    client_id: str
    revoked: bool
    grants_revoked: int


class OAuthClientsApi(Controller):
    path = "/api/oauth/clients"
    tags = ["customer"]
    security = [{"apiKey": []}, {"bearer": []}]

    @get("/", description=ListAuthorizedClients.__doc__, responses=problem_responses())
    @inject
    async def list_clients(
        self, customer: FromDishka[Customer], list_clients: FromDishka[ListAuthorizedClients]
    ) -> AuthorizedClients:
        return AuthorizedClients(
            customer_id=customer.id,
            clients=[
                AuthorizedClientView(c.client_id, c.client_name, c.authorized_at, c.last_used_at, c.grants)
                for c in await list_clients(customer.id)
            ],
        )

    @delete(
        "/{client_id:path}",
        status_code=200,
        description=RevokeAuthorizedClient.__doc__,
        responses=problem_responses(404),
    )
    @inject
    async def revoke_client(
        self,
        client_id: Annotated[
            str, PathParameter(description="the client's id; a metadata-document client's id is its URL")
        ],
        request: Request[Any, Any, Any],
        customer: FromDishka[Customer],
        revoke: FromDishka[RevokeAuthorizedClient],
    ) -> RevokedClient:
        # Routing merges the "//" of a metadata-document client's URL id; the raw path keeps it exact.
        raw = request.scope.get("raw_path") or b""
        prefix = f"{self.path}/".encode()
        client_id = unquote(raw[len(prefix) :].decode("latin-1")) if raw.startswith(prefix) else client_id.lstrip("/")
        return RevokedClient(client_id, True, await revoke(customer.id, client_id))
