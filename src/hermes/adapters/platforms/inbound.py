"""A platform's inbound side built from plain functions: the route kind, the account its credentials
name, the decoder of its events, and what connecting and disconnecting do at the platform."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hermes.domain.credentials import Credentials
from hermes.domain.inbound import InboundChange

OnConnect = Callable[[str, Credentials], Awaitable[Credentials]]
OnDisconnect = Callable[[Credentials], Awaitable[None]]


async def _keep(customer_id: str, credentials: Credentials) -> Credentials:
    return credentials


async def _nothing(credentials: Credentials) -> None:
    return None


@dataclass(frozen=True, slots=True)
class RoutedInbound:
    route_kind: str
    account_name: str
    account: Callable[[Credentials], str]
    decoder: Callable[[bytes], list[InboundChange]]
    on_connect: OnConnect = _keep
    on_disconnect: OnDisconnect = _nothing
    polled: bool = False

    def account_id(self, credentials: Credentials) -> str:
        return self.account(credentials)

    def decode(self, body: bytes) -> list[InboundChange]:
        return self.decoder(body)

    async def connected(self, customer_id: str, credentials: Credentials) -> Credentials:
        return await self.on_connect(customer_id, credentials)

    async def disconnected(self, credentials: Credentials) -> None:
        await self.on_disconnect(credentials)
