"""Platform plug-ins. Adding a platform: one module here and one line in `build_plugins`."""

from __future__ import annotations

import httpx

from hermes.adapters.platforms import discord, email, instagram, linkedin, obsidian, telegram, twitter, whatsapp
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.registry import PlatformPlugin


def build_plugins(http: httpx.AsyncClient, config: PlatformConfig) -> list[PlatformPlugin]:
    plugins: list[PlatformPlugin] = []
    plugins.append(whatsapp.plugin(http, config))
    plugins.append(telegram.plugin(http, config))
    plugins.append(discord.plugin(http, config))
    plugins.append(twitter.plugin(http, config))
    plugins.append(linkedin.plugin(http, config))
    plugins.append(instagram.plugin(http, config))
    plugins.append(email.plugin(http, config))
    plugins.append(obsidian.plugin(http, config))
    return plugins
