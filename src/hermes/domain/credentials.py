"""What each platform needs to act on a customer's account, and the rules it must satisfy.

Field names are the HTTP API's camelCase names (`phoneNumberId`); the single-user
environment fallback derives `WHATSAPP_DEFAULT_PHONE_NUMBER_ID` from them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from hermes.domain.errors import Invalid
from hermes.domain.platform import Platform

Credentials = dict[str, str | int]
_MAX_TEXT = 4096


def plain_text(value: object, max_len: int = _MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > max_len:
        raise ValueError(f"must be at most {max_len} characters")
    if any(ord(c) < 32 for c in value):
        raise ValueError("must not contain control characters")
    return value


def token(value: object) -> str:
    text = plain_text(value)
    if any(c.isspace() for c in text):
        raise ValueError("must not contain whitespace")
    return text


def digits(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = plain_text(value, 64)
    if not (text.isascii() and text.isdigit()):  # isdigit alone admits "²" and other scripts' digits
        raise ValueError("must contain only digits")
    return text


def hostname(value: object) -> str:
    text = plain_text(value, 253)
    if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", text):
        raise ValueError("must be a host name or IP address")
    return text.lower()


def port(value: object) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ValueError("must be a port number between 1 and 65535")
    return value


def one_of(*choices: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if value not in choices:
            raise ValueError("must be one of " + ", ".join(choices))
        return str(value)

    return parse


def email_address(value: object) -> str:
    text = plain_text(value, 320)
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", text):
        raise ValueError("must be an email address")
    return text


def http_url(value: object) -> str:
    text = plain_text(value, 2048)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    if parts.username or parts.password:
        raise ValueError("must not contain a user name or password")
    return text.rstrip("/")


def epoch_seconds(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**40:
        raise ValueError("must be a time in seconds since 1970")
    return value


@dataclass(frozen=True, slots=True)
class CredentialField:
    name: str
    parse: Callable[[object], str | int]
    required: bool = True
    secret: bool = False
    description: str = ""
    integer: bool = False  # a number on the wire (a string of digits is accepted too)
    choices: tuple[str, ...] = ()  # the only values allowed, when there is such a list
    managed: bool = False  # written by Hermes after the platform's consent page, not asked for in forms

    @property
    def env_suffix(self) -> str:
        """`phoneNumberId` -> `PHONE_NUMBER_ID`."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).upper()


@dataclass(frozen=True, slots=True)
class CredentialSchema:
    platform: Platform
    fields: tuple[CredentialField, ...]
    rules: tuple[Callable[[Credentials], None], ...] = field(default=())

    def parse(self, raw: object) -> Credentials:
        """Validated credentials, or `Invalid` naming every offending field."""
        if not isinstance(raw, Mapping):
            raise Invalid("the body must be a JSON object", {"body": "must be a JSON object"})
        errors: dict[str, str] = {}
        known = {f.name for f in self.form_fields}
        for name in raw:
            if name not in known:
                errors[str(name)] = "unknown field; expected " + ", ".join(sorted(known))
        parsed: Credentials = {}
        for spec in self.form_fields:
            value = raw.get(spec.name)
            if value is None:
                if spec.required:
                    errors[spec.name] = "is required"
                continue
            try:
                parsed[spec.name] = spec.parse(value)
            except ValueError as exc:
                errors[spec.name] = str(exc)
        if not errors:
            for rule in self.rules:
                try:
                    rule(parsed)
                except Invalid as exc:
                    errors.update(exc.fields)
        if errors:
            names = ", ".join(sorted(errors))
            raise Invalid(f"invalid {self.platform.value} credentials: {names}", errors)
        return parsed

    @property
    def form_fields(self) -> tuple[CredentialField, ...]:
        """What an owner types in to connect (Hermes fills in the rest itself)."""
        return tuple(f for f in self.fields if not f.managed)

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.secret)


# Kept with the tokens when Hermes connected the account through the platform's consent page (managed OAuth).
GRANT_FIELDS = (
    CredentialField(
        "refreshToken", token, required=False, secret=True, description="OAuth 2.0 refresh token", managed=True
    ),
    CredentialField(
        "expiresAt",
        epoch_seconds,
        required=False,
        integer=True,
        description="when the access token expires (seconds since 1970)",
        managed=True,
    ),
)


def parse_credentials(platform: Platform, raw: object) -> Credentials:
    return platform.credentials.parse(raw)


def schemas() -> dict[Platform, CredentialSchema]:
    """Every declared platform's credential schema."""
    return {p: p.credentials for p in Platform}


def credentials_from_env(platform: Platform, env: Mapping[str, str]) -> Credentials | None:
    """Single-user mode: `{PLATFORM}_DEFAULT_{FIELD}` variables, or None when none are set."""
    schema = platform.credentials
    prefix = f"{platform.value.upper()}_DEFAULT_"
    raw = {f.name: env[prefix + f.env_suffix] for f in schema.fields if prefix + f.env_suffix in env}
    if not raw:
        return None
    return schema.parse(raw)
