"""Platform plug-ins: each module here ends with its one `declare(...)` (see `declaration.py`)."""

from __future__ import annotations

import httpx

# Importing a module declares its platform; the order here is the order platforms are listed in.
# isort: off
from hermes.adapters.platforms import email, whatsapp, linkedin, telegram, discord, instagram, twitter, obsidian  # noqa: F401

# isort: on
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.declaration import declarations
from hermes.adapters.platforms.registry import PlatformPlugin


def build_plugins(http: httpx.AsyncClient, config: PlatformConfig) -> list[PlatformPlugin]:
    return [d.build(http, config) for d in declarations().values()]
