"""A platform is one declaration: name, display name, credential schema, default API base, the
builder of its tools and `verify`, and optionally its webhook.

Each platform module ends with one `declare(...)`; everything else (settings, connect and
disconnect, routing, `/webhook/{platform}`, OpenAPI bodies, the consent page, tool listings)
iterates `declarations()`. A test can declare a platform of its own the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.adapters.platforms.webhook_auth import WebhookFactory
from hermes.domain.credentials import CredentialField, Credentials, CredentialSchema
from hermes.domain.platform import Platform

Build = Callable[[httpx.AsyncClient, PlatformConfig], PlatformPlugin]


@dataclass(frozen=True, slots=True)
class PlatformDeclaration:
    platform: Platform
    build: Build
    api_base: str | None = None  # default of HERMES_{PLATFORM}_API_BASE; None: the customer names the host
    webhook: WebhookFactory | None = None  # how `/webhook/{platform}` authenticates a POST; None: no webhook


_DECLARATIONS: dict[Platform, PlatformDeclaration] = {}


def declare(
    name: str,
    *,
    display_name: str,
    credentials: tuple[CredentialField, ...],
    build: Build,
    rules: tuple[Callable[[Credentials], None], ...] = (),
    api_base: str | None = None,
    webhook: WebhookFactory | None = None,
) -> Platform:
    platform = Platform.declare(name, display_name, lambda p: CredentialSchema(p, credentials, rules))
    _DECLARATIONS[platform] = PlatformDeclaration(platform, build, api_base, webhook)
    return platform


def withdraw(platform: Platform) -> None:
    """Undo `declare` (a test's own platform)."""
    _DECLARATIONS.pop(platform, None)
    Platform.withdraw(platform.value)


def declarations() -> Mapping[Platform, PlatformDeclaration]:
    """Every declared platform, in declaration order."""
    return dict(_DECLARATIONS)


def default_api_bases() -> dict[Platform, str]:
    return {p: d.api_base for p, d in _DECLARATIONS.items() if d.api_base is not None}
