"""Platform plug-ins. Adding a platform: one module here and one line in `build_plugins`."""

from __future__ import annotations

import httpx

from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.registry import PlatformPlugin


def build_plugins(http: httpx.AsyncClient, config: PlatformConfig) -> list[PlatformPlugin]:
    plugins: list[PlatformPlugin] = []
    return plugins
