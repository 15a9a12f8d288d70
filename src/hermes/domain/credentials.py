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


def _text(value: object, max_len: int = _MAX_TEXT) -> str:
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


def _token(value: object) -> str:
    text = _text(value)
    if any(c.isspace() for c in text):
        raise ValueError("must not contain whitespace")
    return text


def _digits(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = _text(value, 64)
    if not (text.isascii() and text.isdigit()):  # isdigit alone admits "²" and other scripts' digits
        raise ValueError("must contain only digits")
    return text


_TELEGRAM_TOKEN = re.compile(r"^[0-9]{3,20}:[A-Za-z0-9_-]{20,200}\Z")


def _telegram_token(value: object) -> str:
    text = _token(value)
    if not _TELEGRAM_TOKEN.match(text):
        raise ValueError("must look like 123456789:AA... (the token BotFather gave you)")
    return text


def _hostname(value: object) -> str:
    text = _text(value, 253)
    if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", text):
        raise ValueError("must be a host name or IP address")
    return text.lower()


def _port(value: object) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ValueError("must be a port number between 1 and 65535")
    return value


def _one_of(*choices: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if value not in choices:
            raise ValueError("must be one of " + ", ".join(choices))
        return str(value)

    return parse


def _email_address(value: object) -> str:
    text = _text(value, 320)
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", text):
        raise ValueError("must be an email address")
    return text


def _http_url(value: object) -> str:
    text = _text(value, 2048)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    if parts.username or parts.password:
        raise ValueError("must not contain a user name or password")
    return text.rstrip("/")


def _linkedin_urn(value: object) -> str:
    text = _text(value, 200)
    if not re.fullmatch(r"urn:li:(person|organization):[A-Za-z0-9_-]+", text):
        raise ValueError("must be urn:li:person:<id> or urn:li:organization:<id>")
    return text


def _epoch_seconds(value: object) -> int:
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


_SECURITY = ("ssl", "starttls", "none")


def _imap_complete(creds: Credentials) -> None:
    # IMAP is optional, but half an IMAP configuration is a mistake worth naming.
    if any(k in creds for k in ("imapPort", "imapSecurity")) and "imapHost" not in creds:
        raise Invalid("imapHost is required with imapPort/imapSecurity", {"imapHost": "is required"})


# Kept with the tokens when Hermes connected the account through the platform's consent page.
_GRANT_FIELDS = (
    CredentialField(
        "refreshToken", _token, required=False, secret=True, description="OAuth 2.0 refresh token", managed=True
    ),
    CredentialField(
        "expiresAt",
        _epoch_seconds,
        required=False,
        integer=True,
        description="when the access token expires (seconds since 1970)",
        managed=True,
    ),
)

SCHEMAS: dict[Platform, CredentialSchema] = {
    Platform.WHATSAPP: CredentialSchema(
        Platform.WHATSAPP,
        (
            CredentialField("phoneNumberId", _digits, description="WhatsApp Cloud API phone number id"),
            CredentialField("accessToken", _token, secret=True, description="system-user access token"),
            CredentialField("businessAccountId", _digits, description="WhatsApp Business Account id"),
        ),
    ),
    Platform.TELEGRAM: CredentialSchema(
        Platform.TELEGRAM, (CredentialField("botToken", _telegram_token, secret=True),)
    ),
    Platform.DISCORD: CredentialSchema(Platform.DISCORD, (CredentialField("botToken", _token, secret=True),)),
    Platform.TWITTER: CredentialSchema(
        Platform.TWITTER,
        (
            CredentialField("accessToken", _token, secret=True, description="OAuth 2.0 user access token"),
            *_GRANT_FIELDS,
        ),
    ),
    Platform.LINKEDIN: CredentialSchema(
        Platform.LINKEDIN,
        (
            CredentialField("accessToken", _token, secret=True),
            CredentialField("authorUrn", _linkedin_urn, required=False),
            *_GRANT_FIELDS,
        ),
    ),
    Platform.INSTAGRAM: CredentialSchema(
        Platform.INSTAGRAM,
        (
            CredentialField("accessToken", _token, secret=True),
            CredentialField("igUserId", _digits),
            *_GRANT_FIELDS,
        ),
    ),
    Platform.EMAIL: CredentialSchema(
        Platform.EMAIL,
        (
            CredentialField("smtpHost", _hostname),
            CredentialField("smtpPort", _port, integer=True),
            CredentialField("smtpSecurity", _one_of(*_SECURITY), choices=_SECURITY),
            CredentialField("username", lambda v: _text(v, 320)),
            CredentialField("password", lambda v: _text(v, 1024), secret=True),
            CredentialField("fromAddress", _email_address),
            CredentialField("imapHost", _hostname, required=False),
            CredentialField("imapPort", _port, required=False, integer=True),
            CredentialField("imapSecurity", _one_of(*_SECURITY), required=False, choices=_SECURITY),
        ),
        rules=(_imap_complete,),
    ),
    Platform.OBSIDIAN: CredentialSchema(
        Platform.OBSIDIAN,
        (
            CredentialField("apiUrl", _http_url),
            CredentialField("apiKey", _token, secret=True),
        ),
    ),
}


def parse_credentials(platform: Platform, raw: object) -> Credentials:
    return SCHEMAS[platform].parse(raw)


def credentials_from_env(platform: Platform, env: Mapping[str, str]) -> Credentials | None:
    """Single-user mode: `{PLATFORM}_DEFAULT_{FIELD}` variables, or None when none are set."""
    schema = SCHEMAS[platform]
    prefix = f"{platform.value.upper()}_DEFAULT_"
    raw = {f.name: env[prefix + f.env_suffix] for f in schema.fields if prefix + f.env_suffix in env}
    if not raw:
        return None
    return schema.parse(raw)
