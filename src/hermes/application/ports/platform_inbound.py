"""A platform's inbound side as the use cases see it: which account its credentials and events
name, how a body is decoded, and what connecting and disconnecting must do at the platform."""

from __future__ import annotations

from typing import Protocol

from hermes.domain.credentials import Credentials
from hermes.domain.inbound import InboundChange
from hermes.domain.platform import Platform


class InboundSide(Protocol):
    @property
    def route_kind(self) -> str:
        """The route key's prefix (`wa_phone_id`): a key is `{route_kind}:{account id}`."""
        ...

    @property
    def account_name(self) -> str:
        """What the platform calls the account, for messages (`phone number id`)."""
        ...

    @property
    def polled(self) -> bool:
        """Hermes reads the account itself (email's INBOX) instead of being sent events: nothing is
        claimed at connect, and each event names its customer and account directly. `account_id` is then empty
        when the credentials give nothing to poll."""
        ...

    def account_id(self, credentials: Credentials) -> str:
        """The account these (validated, proven) credentials act for."""
        ...

    def decode(self, body: bytes) -> list[InboundChange]:
        """One acknowledged event, split by the account each part concerns (`business_id`)."""
        ...

    async def connected(self, customer_id: str, credentials: Credentials) -> Credentials:
        """The account is routed to the customer: set up delivery at the platform (a webhook, say).

        Returns the credentials to store, with whatever Hermes generated for the account (a webhook
        secret) added; kept encrypted with the rest.
        """
        ...

    async def disconnected(self, credentials: Credentials) -> None:
        """The route is released: stop delivery at the platform, best effort."""
        ...


class InboundSides(Protocol):
    def inbound(self, platform: Platform) -> InboundSide | None:
        """The platform's inbound side, or None when it receives nothing."""
        ...


def route_key(side: InboundSide, account_id: str) -> str:
    return f"{side.route_kind}:{account_id}"
