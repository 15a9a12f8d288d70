"""Polled email through the inbound queue: a message the INBOX poller found, as a queued event and back.

The body is `{"account": customer id, "message": {...}}`, the message in the inbox's own
shape (the domain's `InboundMessage`, encoded as it is declared; its `account` names the
customer's email account it was read from, the default one when absent). Only the poller
writes such events: email has no webhook, so nobody outside Hermes can queue one.
"""

from __future__ import annotations

from dataclasses import replace

import msgspec

from hermes.adapters.platform_codec import dec_hook, enc_hook
from hermes.application.ports.mailboxes import PolledAccount, PolledEventCodec
from hermes.domain.errors import Invalid
from hermes.domain.inbound import InboundChange, InboundMessage
from hermes.domain.platform import Platform


class _Event(msgspec.Struct):
    account: str
    message: InboundMessage


_encode = msgspec.json.Encoder(enc_hook=enc_hook).encode
_decode = msgspec.json.Decoder(_Event, dec_hook=dec_hook).decode


class PolledEmailCodec(PolledEventCodec):
    def encode(self, account: PolledAccount, message: InboundMessage) -> bytes:
        return _encode(_Event(account.customer_id, replace(message, account=account.account)))

    def decode(self, platform: Platform, body: bytes) -> list[InboundChange]:
        try:
            event = _decode(body)
        except msgspec.DecodeError as exc:
            raise Invalid(f"not a polled email event: {exc}") from None
        if platform is not Platform.EMAIL or event.message.platform is not Platform.EMAIL or not event.account:
            raise Invalid("not a polled email event")
        # The route key is the account itself: the poller read this customer's own mailbox.
        return [InboundChange(Platform.EMAIL, event.account, (event.message,), account=event.message.account)]
