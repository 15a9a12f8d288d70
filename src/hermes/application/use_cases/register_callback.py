from __future__ import annotations

import secrets
from dataclasses import dataclass

from hermes.application.ports.callbacks import CallbackSender, CallbackStore
from hermes.application.ports.clock import Clock
from hermes.application.ports.credentials import Cipher
from hermes.application.ports.inbound import Inbox
from hermes.domain.callbacks import Callback, new_signing_secret, parse_callback_url


def callback_context(customer_id: str) -> bytes:
    # Associated data: a sealed signing secret copied to another customer fails to open.
    return f"hermes:callback:{customer_id}".encode()


@dataclass(frozen=True, slots=True)
class RegisteredCallback:
    callback: Callback
    signing_secret: str  # shown once, here


@dataclass(slots=True)
class RegisterCallback:
    """Register the https URL that receives each inbound message as a signed POST.

    The URL must be https and its host must resolve to public addresses only (no
    loopback, private ranges or cloud metadata). Every registration issues a new
    signing secret, returned once: each delivery carries `X-Hermes-Timestamp` and
    `X-Hermes-Signature: sha256=HMAC-SHA256(secret, "{timestamp}.{body}")`. A new
    callback receives the messages that arrive from now on; replacing a callback
    keeps its place, so messages not yet delivered go to the new URL. Deliveries
    are retried with backoff and listed by `GET /api/inbound/callback`.
    """

    store: CallbackStore
    sender: CallbackSender
    inbox: Inbox
    cipher: Cipher
    clock: Clock

    async def __call__(self, customer_id: str, url: object) -> RegisteredCallback:
        parsed = parse_callback_url(url)
        await self.sender.check(parsed)
        secret = new_signing_secret()
        previous = await self.store.get(customer_id)
        cursor = previous.cursor if previous is not None else await self.inbox.tail(customer_id)
        callback = Callback(
            customer_id=customer_id,
            url=parsed,
            secret_envelope=self.cipher.encrypt(secret.encode(), callback_context(customer_id)),
            registration=secrets.token_hex(8),
            created_at=self.clock.now(),
            cursor=cursor,
        )
        await self.store.put(callback)
        return RegisteredCallback(callback, secret)
