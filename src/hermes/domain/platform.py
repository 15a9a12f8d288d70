"""The platforms Hermes speaks to."""

from __future__ import annotations

from enum import StrEnum


class Platform(StrEnum):
    EMAIL = "email"
    WHATSAPP = "whatsapp"
    LINKEDIN = "linkedin"
    TELEGRAM = "telegram"
    DISCORD = "discord"
    INSTAGRAM = "instagram"
    TWITTER = "twitter"
    OBSIDIAN = "obsidian"

    @property
    def display_name(self) -> str:
        """The name as the platform's own users write it."""
        return _DISPLAY_NAMES[self]

    @classmethod
    def parse(cls, value: str) -> Platform:
        """The platform named `value`; `NotFound` when there is none (an unknown path is a 404)."""
        from hermes.domain.errors import NotFound

        try:
            return cls(value)
        except ValueError:
            known = ", ".join(p.value for p in cls)
            raise NotFound(f"unknown platform {value!r}; known platforms: {known}") from None


_DISPLAY_NAMES = {
    Platform.EMAIL: "Email",
    Platform.WHATSAPP: "WhatsApp",
    Platform.LINKEDIN: "LinkedIn",
    Platform.TELEGRAM: "Telegram",
    Platform.DISCORD: "Discord",
    Platform.INSTAGRAM: "Instagram",
    Platform.TWITTER: "X",
    Platform.OBSIDIAN: "Obsidian",
}

ALL_PLATFORMS: tuple[Platform, ...] = tuple(Platform)
