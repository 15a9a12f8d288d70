"""Meta's WhatsApp webhook: the verification handshake and inbound events (DESIGN.md section 6).

A plain ASGI app rather than a Litestar handler: the POST path is the hottest one
Hermes has (Meta may send thousands a second and retries whatever is slow) and it
needs no routing, validation or request container. It verifies the signature over
the raw bytes before anything else, stores the body in the durable queue and only
then answers `200 EVENT_RECEIVED`; routing happens afterwards, off the request.
Nothing is stored when the signature fails (401), and an event that could not be
stored is never acknowledged (503, so that Meta retries).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from urllib.parse import parse_qsl

import msgspec
from starlette.types import Receive, Scope, Send

from hermes.application.ports.inbound import InboundQueue
from hermes.domain.platform import Platform
from hermes.entrypoints.http.raw_asgi import TEXT, declared_length, problem, read_capped, respond, too_large

log = logging.getLogger("hermes.webhook")

_SIGNATURE_PREFIX = b"sha256="
_encode = msgspec.json.Encoder().encode


def parse_app_secrets(value: str | None) -> list[bytes]:
    """`HERMES_WHATSAPP_APP_SECRET`: one secret, or several separated by commas while rotating."""
    return [s.strip().encode() for s in (value or "").split(",") if s.strip()]


def signature_matches(body: bytes, header: bytes | None, app_secrets: Sequence[bytes]) -> bool:
    """`X-Hub-Signature-256: sha256=<hex>` against every configured secret, each compared in constant time."""
    if not header or header[:7].lower() != _SIGNATURE_PREFIX:
        return False
    given = header[7:].strip().lower()
    matched = False
    for secret in app_secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        matched |= hmac.compare_digest(expected, given)
    return matched


class _Throttled:
    """Logs a repeated warning at most once a minute, with how often it happened meanwhile."""

    def __init__(self, message: str) -> None:
        self._message = message
        self._count = 0
        self._next = 0.0

    def hit(self) -> None:
        self._count += 1
        now = time.monotonic()
        if now >= self._next:
            log.warning("%s (%d time(s) in the last minute)", self._message, self._count)
            self._count = 0
            self._next = now + 60


class WhatsAppWebhook:
    def __init__(
        self, queue: InboundQueue, app_secrets: Sequence[bytes], verify_token: str | None, max_body_bytes: int
    ) -> None:
        self._queue = queue
        self._max_body = max_body_bytes
        self._secrets = list(app_secrets)
        self._verify_token = verify_token.encode() if verify_token else None
        self._bad_signature = _Throttled("webhook POST refused: missing or wrong X-Hub-Signature-256")
        self._not_stored = _Throttled("webhook POST answered 503: the event could not be stored")
        if not self._secrets:
            log.warning("HERMES_WHATSAPP_APP_SECRET is not set: every WhatsApp webhook POST will be refused")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "POST":
            await self._event(scope, receive, send)
        elif method in ("GET", "HEAD"):
            await self._handshake(scope, send)
        else:
            await problem(send, 405, "Method not allowed", "use GET or POST", [(b"allow", b"GET, POST")])

    async def _handshake(self, scope: Scope, send: Send) -> None:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        token = query.get("hub.verify_token", "").encode()
        challenge = query.get("hub.challenge", "")
        if (
            self._verify_token is None
            or query.get("hub.mode") != "subscribe"
            or not hmac.compare_digest(token, self._verify_token)
            or not challenge
            or len(challenge) > 512
        ):
            await problem(send, 403, "Forbidden", "verification token mismatch")
            return
        await respond(send, 200, challenge.encode(), TEXT)

    async def _event(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = declared_length(scope)
        if declared is not None and declared > self._max_body:
            await too_large(send, self._max_body)
            return
        body = await read_capped(receive, self._max_body)
        if body is None:
            await too_large(send, self._max_body)
            return
        signature = next((v for k, v in scope["headers"] if k == b"x-hub-signature-256"), None)
        if not signature_matches(body, signature, self._secrets):
            self._bad_signature.hit()
            await problem(send, 401, "Unauthorized", "missing or invalid X-Hub-Signature-256")
            return
        if body.lstrip()[:1] != b"{":
            await problem(send, 400, "Invalid request", "the body must be a JSON object")
            return
        try:
            event_id = await self._queue.put(Platform.WHATSAPP, body)
        except Exception:
            # Never a 200 for an event that is not stored: Meta retries a 503.
            self._not_stored.hit()
            await problem(
                send, 503, "Service unavailable", "the event could not be stored; retry", [(b"retry-after", b"5")]
            )
            return
        # DEBUG only (the hot path): ties this request's id to the routing worker's `event-<id>` lines.
        log.debug("webhook event queued as %s", event_id)
        await respond(send, 200, b"EVENT_RECEIVED", TEXT)
