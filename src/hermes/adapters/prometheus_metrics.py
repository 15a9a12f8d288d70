"""Hermes's Prometheus metrics, declared once, and the port decorators that count through them.

Under `hermes serve --workers N` every worker writes its samples to files in
`PROMETHEUS_MULTIPROC_DIR` (prometheus-client reads the variable when it is first
imported) and a scrape of any worker adds them all up (`render`). Gauges that describe
shared state (the queue) are set by whichever worker is scraped, so they take the most
recent value; the callback backlog is per worker and adds up across the live ones.
"""

from __future__ import annotations

import os
from datetime import date

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from hermes.application.ports.audit import AuditLog
from hermes.application.ports.metering import RateLimiter, UsageMeter
from hermes.application.ports.queue_stats import QueueStats
from hermes.domain.audit import STARTED, AuditEntry

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series: twice the text, read by no one

HTTP_REQUESTS = Histogram(
    "hermes_http_request_duration_seconds",
    "HTTP requests by route template and status: count and latency.",
    ["route", "status"],
)
TOOL_CALLS = Counter(
    "hermes_tool_calls_total",
    "Tool calls (MCP and REST) by tool and outcome: success, or the error code.",
    ["tool", "outcome"],
)
PLATFORM_CALLS = Histogram(
    "hermes_platform_call_duration_seconds",
    "Calls to the platforms' APIs (all attempts of one call) by platform and result code: ok, or the error code.",
    ["platform", "code"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0),
)
RATE_LIMIT_REFUSALS = Counter(
    "hermes_rate_limit_refusals_total",
    "Requests refused by a plan limit: requests_per_minute or monthly_tool_calls.",
    ["limit"],
)
QUEUE_DEPTH = Gauge(
    "hermes_inbound_queue_depth",
    "Acknowledged webhook events not yet routed.",
    multiprocess_mode="mostrecent",
)
QUEUE_OLDEST_AGE = Gauge(
    "hermes_inbound_queue_oldest_age_seconds",
    "Age of the oldest webhook event not yet routed (0 when none is waiting).",
    multiprocess_mode="mostrecent",
)
DEAD_LETTERS = Gauge(
    "hermes_inbound_dead_letters",
    "Webhook events that could not be routed and wait for an operator (hermes inbound dead-letters).",
    multiprocess_mode="mostrecent",
)
CALLBACK_BACKLOG = Gauge(
    "hermes_callback_backlog",
    "Customers whose new inbound messages wait to be delivered to their callback.",
    multiprocess_mode="livesum",
)


def record_queue(stats: QueueStats) -> None:
    QUEUE_DEPTH.set(stats.depth)
    QUEUE_OLDEST_AGE.set(stats.oldest_age)
    DEAD_LETTERS.set(stats.dead_letters)


def render() -> tuple[bytes, str]:
    """The exposition text of this process, or of every worker's when they share a directory."""
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def forget_this_process() -> None:
    """A worker stopping: its live gauges must no longer count."""
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        _multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class CountingRateLimiter(RateLimiter):
    """Counts the requests the per-minute limit refuses."""

    def __init__(self, inner: RateLimiter) -> None:
        self._inner = inner
        self._refused = RATE_LIMIT_REFUSALS.labels("requests_per_minute")

    async def hit(self, customer_id: str, limit: int) -> float | None:
        retry_after = await self._inner.hit(customer_id, limit)
        if retry_after is not None:
            self._refused.inc()
        return retry_after


class CountingUsageMeter(UsageMeter):
    """Counts the tool calls the monthly quota refuses."""

    def __init__(self, inner: UsageMeter) -> None:
        self._inner = inner
        self._refused = RATE_LIMIT_REFUSALS.labels("monthly_tool_calls")

    async def consume(self, customer_id: str, month: str, limit: int) -> int | None:
        used = await self._inner.consume(customer_id, month, limit)
        if used is None:
            self._refused.inc()
        return used

    async def used(self, customer_id: str, month: str) -> int:
        return await self._inner.used(customer_id, month)


class CountingAuditLog(AuditLog):
    """Every tool call ends in exactly one final audit entry: counting those counts the calls."""

    def __init__(self, inner: AuditLog) -> None:
        self._inner = inner

    async def append(self, entry: AuditEntry) -> str:
        entry_id = await self._inner.append(entry)
        if entry.outcome != STARTED:
            _count(entry)
        return entry_id

    async def complete(self, entry_id: str, entry: AuditEntry) -> None:
        await self._inner.complete(entry_id, entry)
        _count(entry)

    async def list(
        self, customer_id: str, day: date, after: int = 0, limit: int = 1000
    ) -> tuple[list[AuditEntry], int | None]:
        return await self._inner.list(customer_id, day, after, limit)


def _count(entry: AuditEntry) -> None:
    TOOL_CALLS.labels(entry.tool, entry.error_code or entry.outcome).inc()
