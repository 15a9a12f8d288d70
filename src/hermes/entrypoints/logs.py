"""One structured logger for Hermes; chatty libraries kept at WARNING (per-request INFO lines halve throughput)."""

from __future__ import annotations

import logging
import sys

_QUIET = ("httpx", "httpcore", "mcp", "mcp.server", "uvicorn.access", "aiosqlite", "asyncmy", "sqlalchemy")


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_hermes", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._hermes = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    logging.getLogger("hermes").setLevel(level.upper())
    root.setLevel(logging.WARNING)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
