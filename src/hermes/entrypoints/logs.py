"""One structured logger for Hermes; chatty libraries kept at WARNING (per-request INFO lines halve throughput).

`HERMES_LOG_FORMAT=json` writes one JSON object per line with the request id, and the
customer and tool when known (`hermes.application.request_context`). OpenTelemetry
tracing is switched on only by `OTEL_EXPORTER_OTLP_ENDPOINT` and only then imported.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from hermes.application import request_context

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_QUIET = ("httpx", "httpcore", "mcp", "mcp.server", "uvicorn.access", "aiosqlite", "asyncmy", "sqlalchemy")
LOG_FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """`time`, `level`, `logger`, `message`, `request_id`, and `customer_id` and `tool` when known."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_context.request_id.get(),
        }
        customer = request_context.customer_id.get()
        if customer is not None:
            entry["customer_id"] = customer
        tool = request_context.tool.get()
        if tool is not None:
            entry["tool"] = tool
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = request_context.request_id.get()
        return line if rid is None else f"{line} [request {rid}]"


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    root = logging.getLogger()
    formatter = JsonFormatter() if log_format == "json" else _TextFormatter(_TEXT_FORMAT)
    ours = [h for h in root.handlers if getattr(h, "_hermes", False)]
    if ours:
        for handler in ours:
            handler.setFormatter(formatter)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        handler._hermes = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    logging.getLogger("hermes").setLevel(level.upper())
    root.setLevel(logging.WARNING)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


OTEL_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
_OTEL_MISSING = (
    "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
    "pip install 'hermes[otel]' (or unset the variable)"
)
_otel_configured = False


def configure_tracing() -> bool:
    """Export traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; nothing is imported otherwise.

    Instruments outgoing httpx calls and Redis commands; the ASGI app is wrapped by `trace_asgi`, the
    SQL engine and the platforms' client by `trace_clients`. The exporter reads the OTEL_* variables itself.
    """
    global _otel_configured
    if not os.environ.get(OTEL_ENDPOINT_VARIABLE):
        return False
    try:
        trace = importlib.import_module("opentelemetry.trace")
        sdk_trace = importlib.import_module("opentelemetry.sdk.trace")
        export = importlib.import_module("opentelemetry.sdk.trace.export")
        resources = importlib.import_module("opentelemetry.sdk.resources")
        otlp = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
        httpx_instr = importlib.import_module("opentelemetry.instrumentation.httpx")
        redis_instr = importlib.import_module("opentelemetry.instrumentation.redis")
        importlib.import_module("opentelemetry.instrumentation.sqlalchemy")
    except ImportError:
        logging.getLogger("hermes").warning(_OTEL_MISSING)
        return False
    if not _otel_configured:
        service = os.environ.get("OTEL_SERVICE_NAME", "hermes")
        provider = sdk_trace.TracerProvider(resource=resources.Resource.create({"service.name": service}))
        provider.add_span_processor(export.BatchSpanProcessor(otlp.OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        httpx_instr.HTTPXClientInstrumentor().instrument()
        redis_instr.RedisInstrumentor().instrument()
        _otel_configured = True
    return True


def trace_asgi(app: Any) -> Any:
    """The ASGI app inside OpenTelemetry's middleware when tracing is on; unchanged (and free) when off."""
    if not _otel_configured:
        return app
    asgi = importlib.import_module("opentelemetry.instrumentation.asgi")
    return asgi.OpenTelemetryMiddleware(app)


def trace_clients(engine: Any, http: Any) -> None:
    """Spans for this (async) SQL engine's statements and this httpx client's calls, when tracing is on.

    The shared httpx client has its own transport, which the global httpx patch does not reach.
    """
    if not _otel_configured:
        return
    sql = importlib.import_module("opentelemetry.instrumentation.sqlalchemy")
    # The instrumentation declares SQLAlchemy < 2.1 but works with 2.1's (unchanged) engine events.
    sql.SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, skip_dep_check=True)
    httpx_instr = importlib.import_module("opentelemetry.instrumentation.httpx")
    httpx_instr.HTTPXClientInstrumentor.instrument_client(http)
