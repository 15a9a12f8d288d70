"""`/webhook/{platform}`: every declared platform's webhook, one entry point (DESIGN.md sections 6, 9).

A plain ASGI app rather than a Litestar handler: the POST path is the hottest one
Hermes has (Meta may send thousands a second and retries whatever is slow) and it
needs no routing, validation or request container. It authenticates the raw bytes the
way the platform's declaration says (Meta's `X-Hub-Signature-256`, Telegram's secret
header) before anything parses them, stores the body in the durable queue and only then
answers (`200 EVENT_RECEIVED` for Meta); routing happens afterwards, off the request.
Nothing is stored when authentication fails (401), and an event that could not be
stored is never acknowledged (503, so that the platform retries).
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send

from hermes.application.ports.inbound import InboundQueue
from hermes.application.ports.webhooks import WebhookAuth, Webhooks
from hermes.domain.platform import Platform
from hermes.entrypoints.http.raw_asgi import TEXT, problem, read_capped, respond

log = logging.getLogger("hermes.webhook")


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


class PlatformWebhooks:
    """Serves `/webhook/{platform}` and `/webhook/{platform}/{account}` (body already capped by `HermesAsgi`)."""

    def __init__(self, queue: InboundQueue, webhooks: Webhooks, max_body_bytes: int) -> None:
        self._queue = queue
        self._webhooks = webhooks
        self._max_body = max_body_bytes
        self._bad_signature = _Throttled("webhook POST refused: missing or wrong authentication")
        self._not_stored = _Throttled("webhook POST answered 503: the event could not be stored")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"][len("/webhook/") :].rstrip("/").split("/")
        found = self._find(parts[0])
        if found is None or len(parts) > 2:
            await problem(send, 404, "Not found", "no webhook at this address")
            return
        platform, webhook = found
        account = parts[1] if len(parts) == 2 else None
        if webhook.account_in_path != (account is not None) or (account is not None and not _plain(account)):
            await problem(send, 404, "Not found", "no webhook at this address")
            return
        method = scope["method"]
        if method == "POST":
            await self._event(platform, webhook, account, scope, receive, send)
        elif method in ("GET", "HEAD"):
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
            answer = webhook.handshake(query)
            if answer is None:
                await problem(send, 403, "Forbidden", "verification token mismatch")
                return
            await respond(send, 200, answer, TEXT)
        else:
            await problem(send, 405, "Method not allowed", "use GET or POST", [(b"allow", b"GET, POST")])

    def _find(self, name: str) -> tuple[Platform, WebhookAuth] | None:
        try:
            platform = Platform(name)
        except ValueError:
            return None
        webhook = self._webhooks.webhook(platform)
        return None if webhook is None else (platform, webhook)

    async def _event(
        self,
        platform: Platform,
        webhook: WebhookAuth,
        account: str | None,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        body = await read_capped(receive, self._max_body)
        if body is None:  # `HermesAsgi` caps first; this holds when the app is mounted on its own
            await problem(send, 413, "Request body too large", f"the body is larger than {self._max_body} bytes")
            return
        if not await webhook.authenticate(scope["headers"], body, account):
            self._bad_signature.hit()
            what = "X-Hub-Signature-256" if not webhook.account_in_path else "secret token"
            await problem(send, 401, "Unauthorized", f"missing or invalid {what}")
            return
        if body.lstrip()[:1] != b"{":
            await problem(send, 400, "Invalid request", "the body must be a JSON object")
            return
        try:
            event_id = await self._queue.put(platform, webhook.envelope(body, account))
        except Exception:
            # Never a 200 for an event that is not stored: the platform retries a 503.
            self._not_stored.hit()
            await problem(
                send, 503, "Service unavailable", "the event could not be stored; retry", [(b"retry-after", b"5")]
            )
            return
        # DEBUG only (the hot path): ties this request's id to the routing worker's `event-<id>` lines.
        log.debug("webhook event queued as %s", event_id)
        await respond(send, 200, webhook.ack, TEXT)


def _plain(account: str) -> bool:
    return 0 < len(account) <= 64 and account.isascii() and account.replace("-", "").replace("_", "").isalnum()
