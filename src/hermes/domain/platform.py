"""The platforms Hermes speaks to: names, each declared once by its plug-in.

`Platform` is a name (a `str`), valid once a plug-in has declared it with its display name and
credential schema (`Platform.declare`). The set is open: a deployment or a test declares another
platform the same way the eight built-in ones are declared. The well-known names below are
constants for code that must name one; they say nothing about which platforms exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from hermes.domain.credentials import Credentials, CredentialSchema


@dataclass(frozen=True, slots=True)
class PlatformTraits:
    """What the domain knows of a declared platform."""

    display_name: str
    credentials: CredentialSchema


_NAMES: dict[str, Platform] = {}
_DECLARED: dict[str, PlatformTraits] = {}


class _Platforms(type):
    """Iterating `Platform` yields every declared platform, in declaration order."""

    def __iter__(cls) -> Iterator[Platform]:
        return iter([_NAMES[name] for name in _DECLARED])

    def __len__(cls) -> int:
        return len(_DECLARED)


class Platform(str, metaclass=_Platforms):
    __slots__ = ()

    EMAIL: ClassVar[Platform]
    WHATSAPP: ClassVar[Platform]
    LINKEDIN: ClassVar[Platform]
    TELEGRAM: ClassVar[Platform]
    DISCORD: ClassVar[Platform]
    INSTAGRAM: ClassVar[Platform]
    TWITTER: ClassVar[Platform]
    OBSIDIAN: ClassVar[Platform]

    def __new__(cls, value: str) -> Platform:
        """The declared platform named `value`; `ValueError` when none is."""
        if value not in _DECLARED:
            raise ValueError(f"{value!r} is not a declared platform")
        return _NAMES[value]

    @classmethod
    def _name(cls, value: str) -> Platform:
        # One object per name, so that `platform is Platform.WHATSAPP` holds wherever it was parsed.
        found = _NAMES.get(value)
        if found is None:
            found = _NAMES[value] = str.__new__(cls, value)
        return found

    @classmethod
    def declare(
        cls,
        name: str,
        display_name: str,
        credentials: Callable[[Platform], CredentialSchema],
    ) -> Platform:
        """Make `name` a platform; `credentials` builds its schema (which names the platform)."""
        if not name.isascii() or not name.isidentifier() or name != name.lower():
            raise ValueError(f"platform name {name!r} must be a lower-case identifier")
        if name in _DECLARED:
            raise ValueError(f"platform {name!r} is declared twice")
        platform = cls._name(name)
        _DECLARED[name] = PlatformTraits(display_name, credentials(platform))
        return platform

    @classmethod
    def withdraw(cls, name: str) -> None:
        """Forget a declaration (tests that declare a platform of their own undo it)."""
        _DECLARED.pop(name, None)

    @property
    def value(self) -> str:
        """The name as a plain string (what is stored and sent)."""
        return str.__str__(self)

    @property
    def traits(self) -> PlatformTraits:
        return _DECLARED[self.value]

    @property
    def display_name(self) -> str:
        """The name as the platform's own users write it."""
        return self.traits.display_name

    @property
    def credentials(self) -> CredentialSchema:
        return self.traits.credentials

    def parse_credentials(self, raw: object) -> Credentials:
        return self.credentials.parse(raw)

    def __repr__(self) -> str:
        return f"Platform({self.value!r})"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def parse(cls, value: str) -> Platform:
        """The platform named `value`; `NotFound` when there is none (an unknown path is a 404)."""
        from hermes.domain.errors import NotFound

        try:
            return cls(value)
        except ValueError:
            known = ", ".join(p.value for p in cls)
            raise NotFound(f"unknown platform {value!r}; known platforms: {known}") from None


Platform.EMAIL = Platform._name("email")
Platform.WHATSAPP = Platform._name("whatsapp")
Platform.LINKEDIN = Platform._name("linkedin")
Platform.TELEGRAM = Platform._name("telegram")
Platform.DISCORD = Platform._name("discord")
Platform.INSTAGRAM = Platform._name("instagram")
Platform.TWITTER = Platform._name("twitter")
Platform.OBSIDIAN = Platform._name("obsidian")


def all_platforms() -> tuple[Platform, ...]:
    """Every declared platform, in declaration order."""
    return tuple(Platform)
