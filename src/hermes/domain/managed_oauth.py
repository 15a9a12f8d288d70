"""Connecting an account through the platform's own consent page, and the health of a connected account.

The operator registers Hermes as an app with the platform (client id and secret);
the account owner approves on the platform's page and Hermes keeps the tokens,
refreshing them before they expire.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hermes.domain.errors import Invalid
from hermes.domain.platform import Platform

DEFAULT_ACCOUNT = "default"
_ACCOUNT = re.compile(r"[a-z0-9_-]{1,32}\Z")

# Stored credential fields that only Hermes writes: the refresh grant and when the access token ends.
REFRESH_FIELD = "refreshToken"
EXPIRES_FIELD = "expiresAt"


def parse_account(value: str | None) -> str:
    """An account name (`[a-z0-9_-]{1,32}`); none given means the default account."""
    if value is None:
        return DEFAULT_ACCOUNT
    if not _ACCOUNT.match(value):
        raise Invalid("account must be 1-32 of a-z, 0-9, _ and -", {"account": "must match [a-z0-9_-]{1,32}"})
    return value


def state_digest(state: str) -> str:
    """What is stored of a `state`: the value itself only ever travels to the platform and back."""
    return hashlib.sha256(state.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """A link handed out to connect one account; used once, by the callback that carries its `state`."""

    customer_id: str
    platform: Platform
    account: str
    code_verifier: str | None
    redirect_uri: str
    expires_at: datetime


class AccountHealth(StrEnum):
    CONNECTED = "connected"
    NEEDS_REAUTH = "needs_reauth"
    FAILING = "failing"


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """What Hermes last learnt about one connected account."""

    platform: Platform
    account: str
    status: AccountHealth
    last_checked_at: datetime
    last_error: str | None = None
    expires_at: datetime | None = None
    connected_at: datetime | None = None
