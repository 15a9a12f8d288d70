"""Helpers shared by unit and integration tests (no fixtures here: see the conftest files)."""

from __future__ import annotations

import base64
import os
import socket
from typing import Any

from hermes.entrypoints.settings import Settings
from tests import whatsapp_payloads as wa

ADMIN_TOKEN = "admin-" + base64.urlsafe_b64encode(os.urandom(18)).decode()
MCP_API_KEY = "mcp-single-" + base64.urlsafe_b64encode(os.urandom(18)).decode()


def new_keyring(*kids: str) -> str:
    return ",".join(f"{kid}:{base64.b64encode(os.urandom(32)).decode()}" for kid in (kids or ("k1",)))


def unique_email(email: str) -> str:
    """`alice@example.com` -> `alice+1a2b3c4d@example.com`: Hermes keeps one customer per email."""
    local, _, domain = email.partition("@")
    return f"{local}+{os.urandom(4).hex()}@{domain}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_settings(**overrides: Any) -> Settings:
    """Settings from explicit values only: a developer's .env must not leak into tests."""
    values: dict[str, Any] = {
        "HERMES_ENCRYPTION_KEYS": new_keyring(),
        "HERMES_ADMIN_TOKEN": ADMIN_TOKEN,
        "MCP_API_KEY": MCP_API_KEY,
        "HERMES_ALLOW_PRIVATE_NETWORKS": True,
        "HERMES_LOG_LEVEL": "DEBUG",
        "HERMES_WHATSAPP_VERIFY_TOKEN": "verify-me",
        "HERMES_WHATSAPP_APP_SECRET": wa.APP_SECRET,
        # Every test calls from 127.0.0.1; the per-address limits are tested on their own, from distinct addresses.
        "HERMES_OAUTH_REGISTER_PER_MINUTE": 100_000,
        "HERMES_OAUTH_REGISTER_PER_DAY": 10_000_000,
        "HERMES_OAUTH_REQUESTS_PER_MINUTE": 100_000,
        # Polling customers' mailboxes logs in to their IMAP servers: only the tests of it turn it on.
        "HERMES_EMAIL_POLL_SECONDS": 0,
        # Background health checks call every stored account's platform: only the tests of them make them due.
        "HERMES_HEALTH_CHECK_HOURS": 100_000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# Fake Graph servers that must know every number/token pair a test connects: Hermes proves
# ownership of a WhatsApp number on every connect (tests/integration/conftest.py adds one).
WHATSAPP_GRAPHS: list[Any] = []


def whatsapp_credentials(phone_number_id: str = "106540352242922", token: str = "EAAG-test-token") -> dict[str, str]:
    """Credentials for a number that `token` can read on every registered fake Graph."""
    for graph in WHATSAPP_GRAPHS:
        graph.add_phone_number(phone_number_id, token)
    return {"phoneNumberId": phone_number_id, "accessToken": token, "businessAccountId": "102290129340398"}


# What a client assumes for a hint that tools/list leaves out (MCP ToolAnnotations).
SPEC_HINTS = {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": False, "openWorldHint": True}


def effective_hints(annotations: Any) -> dict[str, bool]:
    """A tool's hints as a client reads them: the listed ones, else the spec's defaults (dict or SDK model)."""
    if annotations is not None and not isinstance(annotations, dict):
        annotations = annotations.model_dump(by_alias=True, exclude_none=True)
    return {**SPEC_HINTS, **(annotations or {})}
