"""`GET /metrics` for Prometheus, and the one ASGI wrapper that times every request and gives it an id.

The wrapper sits outside everything, the /mcp and webhook fast paths included: it reads
`X-Request-Id` (or makes one), returns it on the response, sets it for the logs, and
observes one histogram sample per request under the route's template, never the raw path.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import os
import re
from time import perf_counter
from typing import Any

from litestar import Request, Response, get
from litestar.enums import ScopeType
from litestar.exceptions import NotFoundException
from litestar.types import ASGIApp, Receive, Scope, Send

from hermes.adapters.prometheus_metrics import HTTP_REQUESTS, forget_this_process, record_queue, render
from hermes.application import request_context
from hermes.application.ports.queue_stats import QueueStatistics
from hermes.domain.errors import HermesError, Unauthorized
from hermes.entrypoints.http.auth import bearer_token

__all__ = ["forget_this_process", "metrics_route", "new_request_id", "observe"]

REQUEST_ID_HEADER = b"x-request-id"
# Ids a caller may choose: short and of a charset that cannot forge a log line or a header.
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,64}")
_UNMATCHED = "unmatched"


_ids = itertools.count(1)
_PROCESS = os.urandom(4).hex()  # random per process, so ids made by different workers never meet


def new_request_id() -> str:
    """16 hex digits, unique per process; cheaper than 8 fresh random bytes on every request."""
    return f"{_PROCESS}{next(_ids) & 0xFFFFFFFF:08x}"


def observe(app: ASGIApp) -> ASGIApp:
    """Wrap the whole app: request id in and out, one latency sample by route template and status."""
    samples: dict[tuple[str, int], Any] = {}  # (route, status) -> histogram child: labels() once each

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = perf_counter()
        given = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                given = value if _VALID_REQUEST_ID.fullmatch(value) else None
                break
        if given is None:
            rid = new_request_id()
            header = rid.encode()
        else:
            rid, header = given.decode(), given
        token = request_context.request_id.set(rid)
        status = 500

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, header)]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            request_context.request_id.reset(token)
            route = scope.get("path_template") or _UNMATCHED  # set by Litestar's router and by `HermesAsgi`
            key = (route, status)
            sample = samples.get(key)
            if sample is None:
                sample = samples[key] = HTTP_REQUESTS.labels(route, str(status))
            sample.observe(perf_counter() - started)

    return handle


def metrics_route(token: str | None) -> Any:
    """`GET /metrics`: 404 when HERMES_METRICS_TOKEN is unset (off), 401 without that bearer token."""
    expected = (token or "").encode()

    @get("/metrics", include_in_schema=False)
    async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
        if not expected:
            raise NotFoundException()
        given = (bearer_token(request.headers.get("authorization")) or "").encode()
        if not hmac.compare_digest(given, expected):
            raise Unauthorized("missing or invalid metrics token (HERMES_METRICS_TOKEN)")
        queue: QueueStatistics | None = getattr(request.app.state, "queue_stats", None)
        if queue is not None:
            # Unavailable: the last values stay; the request metrics are still worth serving.
            with contextlib.suppress(HermesError):
                record_queue(await queue.stats())
        body, content_type = render()
        return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})

    return metrics
