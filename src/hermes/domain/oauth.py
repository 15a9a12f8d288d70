"""OAuth 2.1 for /mcp: the clients a customer lets in, and what each one is granted.

A customer who approves a client (Claude.ai, say) on the consent page opens a
*grant*: one authorization code, then a family of access and refresh tokens
that all carry the grant's id. Revoking the grant kills the whole family at once.

Every secret handed out (authorization code, access token, refresh token, the
consent page's browser binding) is 256 random bits and is stored only as its
SHA-256 digest, like API keys.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from hermes.domain.customer import Customer
from hermes.domain.errors import Invalid

# Prefixes, not secrets: they tell the three kinds (and API keys, `hms_`) apart, also to secret scanners.
ACCESS_TOKEN_PREFIX = "hat_"  # noqa: S105
REFRESH_TOKEN_PREFIX = "hrt_"  # noqa: S105
CODE_PREFIX = "hac_"
_SECRET_BYTES = 32
MAX_SECRET_LENGTH = 128

GRANT_TYPES = ("authorization_code", "refresh_token")
# "none": a public client proving itself with PKCE alone (every metadata-document client).
AUTH_METHODS = ("none", "client_secret_post", "client_secret_basic")
MAX_CLIENT_ID_LENGTH = 255
MAX_STATE_LENGTH = 2048
MAX_REDIRECT_URI_LENGTH = 2000
MAX_REDIRECT_URIS = 10
# Free-text metadata a client may register (scope, home page, logo, software id and version).
MAX_METADATA_TEXT_LENGTH = 2000
_MAX_NAME_LENGTH = 120
_MAX_SCOPES = 20
# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,64}$")
# RFC 7636: the S256 challenge is BASE64URL(SHA256(verifier)) without padding, always 43 characters.
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# Schemes a browser must never be sent to, whatever a client registers.
_FORBIDDEN_SCHEMES = frozenset(
    {"javascript", "data", "vbscript", "file", "about", "blob", "filesystem", "ftp", "ws", "wss"}
)
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class TokenKind(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(_SECRET_BYTES)


def digest_secret(secret: str) -> str:
    """What the stores keep instead of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_grant_id() -> str:
    return "grant_" + secrets.token_hex(12)


class AuthorizationRefused(Invalid):
    """The client's authorization request cannot be served; `error` is the RFC 6749 error code."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error


class TokenRefused(Invalid):
    """A token request the authorization server refuses; `error` is the RFC 6749 section 5.2 code."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error


@dataclass(frozen=True, slots=True)
class OAuthPolicy:
    """Where Hermes lives and how long each thing it issues lasts (seconds)."""

    issuer: str
    resource: str
    access_token_ttl: int = 3600
    refresh_token_ttl: int = 30 * 24 * 3600
    code_ttl: int = 120
    consent_ttl: int = 600
    # A registration nobody has used yet lives a day; one in use lives on while it is used.
    unused_client_ttl: int = 24 * 3600
    client_ttl: int = 90 * 24 * 3600
    # An authorization code's record outlives the code by this much, so that a replay of a used code,
    # even an expired one, is still recognised and revokes what the code produced.
    code_replay_window: int = 3600

    @property
    def code_record_ttl(self) -> int:
        return self.code_ttl + self.code_replay_window

    def is_our_resource(self, resource: str) -> bool:
        return resource.rstrip("/") == self.resource.rstrip("/")


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """A client that may ask customers for access.

    Either registered through RFC 7591 (Hermes chose its id; `secret_digest` is set
    for confidential clients), or identified by the https URL of its Client ID
    Metadata Document (`metadata_document`; always public). Its name is what the
    client says about itself: the consent page shows it next to where the browser
    will be sent back, which is the part Hermes can vouch for.
    """

    client_id: str
    redirect_uris: tuple[str, ...]
    name: str | None = None
    auth_method: str = "none"
    secret_digest: str | None = None
    secret_expires_at: int | None = None
    grant_types: tuple[str, ...] = GRANT_TYPES
    response_types: tuple[str, ...] = ("code",)
    scope: str | None = None
    client_uri: str | None = None
    logo_uri: str | None = None
    software_id: str | None = None
    software_version: str | None = None
    issued_at: int | None = None
    metadata_document: bool = False

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        return redirect_host(self.redirect_uris[0]) if self.redirect_uris else self.client_id


def redirect_host(uri: str) -> str:
    """Where a redirect URI sends the browser, as a person reads it (`claude.ai`, `127.0.0.1:33418`)."""
    parts = urlsplit(uri)
    return parts.netloc.rpartition("@")[2] or f"{parts.scheme}:"


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` cannot be a redirect URI, or None when it can.

    https anywhere; http only to loopback (RFC 8252 native apps); a private-use
    scheme for native apps (`cursor://...`), but never one that runs code or reads
    files in the browser. No fragment (RFC 6749 section 3.1.2).
    """
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        return f"is longer than {MAX_REDIRECT_URI_LENGTH} characters"
    if any(c.isspace() or ord(c) < 0x20 for c in uri):
        return "contains whitespace or control characters"
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - parsing the port raises on a malformed one
    except ValueError:
        return "is not a valid URL"
    scheme = parts.scheme.lower()
    if not scheme:
        return "must be an absolute URL"
    if parts.fragment or uri.endswith("#"):
        return "must not contain a fragment"
    if scheme in _FORBIDDEN_SCHEMES:
        return f"must not use the {scheme}: scheme"
    if scheme == "https":
        return None if host else "must name a host"
    if scheme == "http":
        if host in _LOOPBACK_HOSTS:
            return None
        return "must use https (plain http is allowed only for loopback addresses)"
    if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        return "must use https, loopback http or an app's own scheme"
    return None


def check_redirect_uris(uris: object) -> tuple[str, ...]:
    if not isinstance(uris, list | tuple) or not uris:
        raise Invalid("redirect_uris must list at least one URL", {"redirect_uris": "must list at least one URL"})
    if len(uris) > MAX_REDIRECT_URIS:
        raise Invalid(
            f"redirect_uris lists {len(uris)} URLs; at most {MAX_REDIRECT_URIS} are allowed",
            {"redirect_uris": f"at most {MAX_REDIRECT_URIS} URLs"},
        )
    checked: list[str] = []
    for uri in uris:
        if not isinstance(uri, str):
            raise Invalid("redirect_uris must be strings", {"redirect_uris": "must be strings"})
        problem = redirect_uri_problem(uri)
        if problem is not None:
            raise Invalid(f"redirect URI {uri[:200]!r} {problem}", {"redirect_uris": problem})
        checked.append(uri)
    return tuple(checked)


def check_metadata_text(field: str, value: str | None) -> None:
    if value is not None and len(value) > MAX_METADATA_TEXT_LENGTH:
        raise Invalid(
            f"{field} is longer than {MAX_METADATA_TEXT_LENGTH} characters",
            {field: f"at most {MAX_METADATA_TEXT_LENGTH} characters"},
        )


def check_client_name(name: object) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str):
        raise Invalid("client_name must be a string", {"client_name": "must be a string"})
    # Collapse whitespace and drop control characters: the name is shown to a person.
    cleaned = " ".join("".join(c for c in name if c.isprintable()).split())
    if len(cleaned) > _MAX_NAME_LENGTH:
        raise Invalid(
            f"client_name is longer than {_MAX_NAME_LENGTH} characters",
            {"client_name": f"at most {_MAX_NAME_LENGTH} characters"},
        )
    return cleaned or None


def parse_scopes(scope: str | None) -> tuple[str, ...]:
    """The requested scope tokens, deduplicated in order.

    Hermes grants all of a customer's tools or nothing, so scopes are recorded and
    echoed (a client refreshing with the scope it asked for must get it) but give
    no extra access.
    """
    if not scope:
        return ()
    tokens = tuple(dict.fromkeys(scope.split()))
    if len(tokens) > _MAX_SCOPES or not all(_SCOPE_TOKEN.match(t) for t in tokens):
        raise AuthorizationRefused("invalid_scope", "the requested scope is malformed")
    return tokens


def check_code_challenge(challenge: str) -> None:
    if not _S256_CHALLENGE.match(challenge):
        raise AuthorizationRefused(
            "invalid_request", "code_challenge must be an S256 PKCE challenge (43 base64url characters)"
        )


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """An authorization request waiting on the consent page.

    `browser_digest` binds it to the browser that opened it (the digest of a secret
    held in that browser's cookie and echoed in the page's forms): another browser,
    or a forged form, cannot sign in to it or approve it. `customer_id` is set once
    the customer has signed in with its API key.
    """

    client_id: str
    client_name: str
    redirect_uri: str
    redirect_uri_explicit: bool
    code_challenge: str
    state: str | None
    scopes: tuple[str, ...]
    resource: str | None
    browser_digest: str
    expires_at: datetime
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """An authorization code: one use, a couple of minutes, for one client and redirect URI.

    `grant_id` is chosen when the code is issued, so that a replayed code can revoke
    the tokens the first exchange produced (OAuth 2.1 section 4.1.3). `epoch` is the
    customer's revocation epoch at approval: a deactivation or key rotation after
    that makes the code worthless.
    """

    grant_id: str
    client_id: str
    client_name: str
    customer_id: str
    redirect_uri: str
    redirect_uri_explicit: bool
    code_challenge: str
    scopes: tuple[str, ...]
    resource: str | None
    expires_at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Grant:
    """A customer's approval of one client: the family every token from it belongs to.

    `epoch` is the customer's revocation epoch when the grant was made: revoking
    all of a customer's grants moves the epoch on, which also kills a grant being
    created at that very moment.
    """

    grant_id: str
    customer_id: str
    client_id: str
    client_name: str
    scopes: tuple[str, ...]
    resource: str | None
    created_at: datetime
    used_at: datetime
    epoch: int


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access or refresh token's record. Access tokens carry the customer they act for."""

    grant_id: str
    customer_id: str
    client_id: str
    scopes: tuple[str, ...]
    resource: str | None
    expires_at: datetime
    customer: Customer | None = None


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuthorizedClient:
    """A client as its customer sees it in the list of what it has let in."""

    client_id: str
    client_name: str
    authorized_at: datetime
    last_used_at: datetime
    grants: int
