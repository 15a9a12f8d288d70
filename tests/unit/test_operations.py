"""What an operator sees: /metrics, request ids in JSON logs, and API docs that load nothing from elsewhere.

The app runs in process (embedded mode on a temporary SQLite file) behind Litestar's test client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import Counter, Gauge, Histogram

from hermes.adapters.sql.migrate import upgrade_url
from hermes.domain.credentials import schemas
from hermes.entrypoints.http.app import make_app
from hermes.entrypoints.logs import JsonFormatter
from tests.support import ADMIN_TOKEN, make_settings

METRICS_TOKEN = "metrics-token-for-tests"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AsyncTestClient[Litestar]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hermes.db'}"
    await upgrade_url(url)
    app = make_app(
        make_settings(HERMES_DATABASE_URL=url, HERMES_METRICS_TOKEN=METRICS_TOKEN, HERMES_LOG_FORMAT="json"), env={}
    )
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def _customer(client: AsyncTestClient[Litestar], email: str = "ops@example.com") -> str:
    reply = await client.post(
        "/admin/customers",
        json={"email": email, "plan": "pro"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert reply.status_code == 201, reply.text
    key: str = reply.json()["apiKey"]
    return key


class _JsonLines(logging.Handler):
    """The log lines exactly as HERMES_LOG_FORMAT=json writes them, formatted while the request runs."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus text, or None when it is absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ", 1)[0] if "{" not in line else line))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_metrics_show_requests_and_tool_calls_after_a_tool_call(client: AsyncTestClient[Litestar]) -> None:
    key = await _customer(client)
    called = await client.post("/api/tools/connections_status", json={}, headers={"x-api-key": key})
    assert called.status_code == 200, called.text

    scraped = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert (_sample(text, "hermes_tool_calls_total", tool="connections_status", outcome="success") or 0) >= 1
    route = "/api/tools/{tool}"
    count = _sample(text, "hermes_http_request_duration_seconds_count", route=route, status="200")
    assert count is not None and count >= 1
    assert _sample(text, "hermes_inbound_queue_depth") == 0
    assert _sample(text, "hermes_inbound_dead_letters") == 0
    assert _sample(text, "hermes_inbound_queue_oldest_age_seconds") == 0
    # Raw paths never become labels: an unknown path is counted as unmatched. The fast paths have their own.
    await client.get("/no/such/path/12345")
    await client.get("/mcp/")
    again = (await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})).text
    assert "/no/such/path" not in again
    assert _sample(again, "hermes_http_request_duration_seconds_count", route="unmatched", status="404")
    assert _sample(again, "hermes_http_request_duration_seconds_count", route="/mcp", status="405")


async def test_metrics_need_the_token(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    assert "hermes_" not in wrong.text


async def test_metrics_are_off_without_a_token(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hermes.db'}"
    await upgrade_url(url)
    async with AsyncTestClient(make_app(make_settings(HERMES_DATABASE_URL=url), env={})) as test_client:
        reply = await test_client.get("/metrics", headers={"Authorization": "Bearer anything"})
        assert reply.status_code == 404


async def test_rate_limit_refusals_are_counted(client: AsyncTestClient[Litestar]) -> None:
    reply = await client.post(
        "/admin/customers",
        json={"email": "limited@example.com", "plan": "free"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    key = reply.json()["apiKey"]
    statuses = [(await client.get("/api/usage", headers={"x-api-key": key})).status_code for _ in range(62)]
    assert 429 in statuses
    text = (await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})).text
    assert (_sample(text, "hermes_rate_limit_refusals_total", limit="requests_per_minute") or 0) >= 1


async def test_request_id_is_returned_and_logged_as_json(client: AsyncTestClient[Litestar]) -> None:
    given = await client.get("/healthz", headers={"X-Request-Id": "trace-abc.123"})
    assert given.headers["x-request-id"] == "trace-abc.123"
    made = await client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-request-id"])
    # An id that could forge a log line or a header is replaced, not echoed.
    forged = await client.get("/healthz", headers={"X-Request-Id": "x\tinjected {json}"})
    assert re.fullmatch(r"[0-9a-f]{16}", forged.headers["x-request-id"])
    # The fast paths answer with it too.
    mcp = await client.get("/mcp", headers={"X-Request-Id": "mcp-req-1"})
    assert mcp.status_code == 405
    assert mcp.headers["x-request-id"] == "mcp-req-1"

    key = await _customer(client, "logs@example.com")
    lines = _JsonLines()
    logging.getLogger("hermes").addHandler(lines)
    try:
        reply = await client.post(
            "/api/connect/telegram",
            json={"botToken": "123456789:" + "A" * 35},
            headers={"x-api-key": key, "X-Request-Id": "connect-req-42"},
        )
    finally:
        logging.getLogger("hermes").removeHandler(lines)
    assert reply.status_code == 200, reply.text
    connected = [json.loads(line) for line in lines.lines if "connected telegram" in line]
    assert len(connected) == 1
    entry = connected[0]
    assert entry["request_id"] == "connect-req-42"
    assert entry["customer_id"] in entry["message"]
    assert entry["level"] == "INFO" and entry["logger"] == "hermes.api" and entry["time"].endswith("+00:00")
    assert all("A" * 35 not in line for line in lines.lines)


async def test_swagger_and_redoc_load_only_from_hermes(client: AsyncTestClient[Litestar]) -> None:
    for page in ("/schema", "/schema/swagger", "/schema/redoc"):
        reply = await client.get(page)
        assert reply.status_code == 200, page
        html = reply.text
        assert "https://" not in html.split("<body", 1)[0], page  # nothing in <head> from elsewhere
        assert "cdn" not in html.lower() and "unpkg" not in html and "googleapis" not in html
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert assets, page
        for asset in assets:
            if asset.startswith("data:"):
                continue
            assert asset.startswith("/"), asset
            fetched = await client.get(asset)
            assert fetched.status_code == 200, asset
            assert len(fetched.content) > 1000, asset
    assert (await client.get("/schema/assets/not-a-file.js")).status_code == 404
    assert (await client.get("/schema/openapi.json")).status_code == 200


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=60, check=False
    )


_BUILD_APP = """
from hermes.entrypoints.http.app import make_app
from hermes.entrypoints import logs
from tests.support import make_settings
app = make_app(make_settings(HERMES_DATABASE_URL="sqlite+aiosqlite:///:memory:"), env={})
from opentelemetry import trace
print(type(app.asgi_handler).__name__, type(trace.get_tracer_provider()).__name__)
"""


def test_tracing_is_off_without_an_otlp_endpoint() -> None:
    run = _python(_BUILD_APP)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["function", "ProxyTracerProvider"]


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver that keeps what it is sent."""

    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


_TRACE_REQUESTS = """
from litestar.testing import TestClient
from opentelemetry import trace
from hermes.entrypoints.http.app import make_app
from tests.support import make_settings
app = make_app(make_settings(HERMES_DATABASE_URL="sqlite+aiosqlite:///:memory:"), env={})
with TestClient(app) as client:
    assert client.get("/readyz").status_code == 200
trace.get_tracer_provider().force_flush()
"""


def test_traces_reach_the_otlp_endpoint_when_one_is_set() -> None:
    pytest.importorskip("opentelemetry.sdk.trace")
    _Collector.received = []
    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    try:
        run = _python(_TRACE_REQUESTS, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.server_port}")
    finally:
        collector.shutdown()
    assert run.returncode == 0, run.stderr
    sent = b"".join(body for path, body in _Collector.received if path == "/v1/traces")
    assert b"/readyz" in sent  # the request's span (ASGI)
    assert b"SELECT" in sent  # the readiness query's span (SQLAlchemy)


def _texts(node: Any) -> list[str]:
    """Every description, summary and title in a JSON document."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "summary", "title") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_texts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_texts(item))
    return found


async def test_the_api_document_speaks_to_its_reader(client: AsyncTestClient[Litestar]) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    texts = _texts(document)
    assert len(texts) > 30
    for text in texts:
        # How the project was planned is no business of the reader ("seed flow 2", "issue 5").
        assert not re.search(r"\bseed\b|\bflows? \d|\bissue (\d|#)|\bstage\b", text, re.IGNORECASE), text
        assert "\n " not in text, text  # no source indentation carried over from a docstring


async def test_connect_bodies_are_typed_per_platform(client: AsyncTestClient[Litestar]) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    body = document["paths"]["/api/connect/{platform}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "additionalProperties" not in body
    by_title = {s["title"]: s for s in body["anyOf"]}
    assert set(by_title) == {f"{p.value} credentials" for p in schemas()}
    for platform, schema in schemas().items():
        shown = by_title[f"{platform.value} credentials"]
        assert list(shown["properties"]) == [f.name for f in schema.form_fields]
        assert shown["required"] == [f.name for f in schema.fields if f.required]
        assert shown["additionalProperties"] is False
    email = by_title["email credentials"]["properties"]
    assert email["smtpPort"]["type"] == "integer"
    assert email["smtpSecurity"]["enum"] == ["ssl", "starttls", "none"]
    assert "imapHost" in body["description"] and "[imapHost]" in body["description"]


def test_the_grafana_dashboard_reads_only_series_hermes_exports() -> None:
    from hermes.adapters import prometheus_metrics

    declared = {
        m._name
        for m in vars(prometheus_metrics).values()
        if isinstance(m, Counter | Gauge | Histogram) and m._name.startswith("hermes_")
    }
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana-hermes.json").read_text())
    used = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bhermes_\w+", target["expr"])
    }
    assert used == declared


async def test_routing_log_lines_carry_the_event_id() -> None:
    from hermes.adapters.memory.inbound import InMemoryInboundQueue
    from hermes.domain.errors import Invalid
    from hermes.domain.platform import Platform
    from hermes.entrypoints.inbound_worker import InboundWorker

    queue = InMemoryInboundQueue()
    event_id = await queue.put(Platform.WHATSAPP, b"not a batch")

    async def route(platform: Platform, body: bytes) -> None:
        raise Invalid("the body is not a webhook batch")

    worker = InboundWorker(queue, route, consumer="test", wait=0.05)  # type: ignore[arg-type]
    lines = _JsonLines()
    logging.getLogger("hermes").addHandler(lines)
    try:
        running = asyncio.create_task(worker.run())
        while event_id not in {d.event_id for d in await queue.dead_letters()}:
            await asyncio.sleep(0.01)
        worker.stop()
        await running
    finally:
        logging.getLogger("hermes").removeHandler(lines)
    entries = [json.loads(line) for line in lines.lines]
    assert [e["request_id"] for e in entries if "dead letters" in e["message"]] == [f"event-{event_id}"]
