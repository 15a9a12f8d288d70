"""Customers (tenants) and their API keys."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from hermes.domain.errors import Conflict, Invalid
from hermes.domain.plan import Plan

API_KEY_PREFIX = "hms_"
# 32 random bytes = 256 bits, well over the 160 the contract asks for.
_API_KEY_BYTES = 32
# ASCII spaces and controls spelled out: `\s` means different things to Python and to JSON Schema.
EMAIL_PATTERN = r"^[^@\u0000-\u0020\u007f]{1,64}@[^@\u0000-\u0020\u007f]{1,255}\.[^@.\u0000-\u0020\u007f]{2,63}$(?!\n)"
_EMAIL = re.compile(EMAIL_PATTERN)


def email_key(email: str) -> str:
    """What makes two emails the same customer's: case does not count."""
    return email.lower()


def email_taken(email: str) -> Conflict:
    return Conflict(f"a customer with the email {email} already exists")


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    email: str
    plan: Plan
    active: bool
    created_at: datetime
    api_key_prefix: str

    def deactivated(self) -> Customer:
        return replace(self, active=False)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A freshly issued key: `secret` is shown once, only `digest` is ever stored."""

    secret: str

    @classmethod
    def generate(cls) -> ApiKey:
        return cls(API_KEY_PREFIX + secrets.token_urlsafe(_API_KEY_BYTES))

    @property
    def digest(self) -> str:
        return digest_api_key(self.secret)

    @property
    def prefix(self) -> str:
        """Enough of the key to recognise it in a list, far too little to use it."""
        return self.secret[: len(API_KEY_PREFIX) + 6]


def digest_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_customer_id() -> str:
    return "cust_" + secrets.token_hex(8)


def parse_email(value: object) -> str:
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise Invalid("email must be an email address", {"email": "must be an email address"})
    return value.strip().lower()


def parse_plan(value: object) -> Plan:
    try:
        return Plan(str(value))
    except ValueError:
        known = ", ".join(p.value for p in Plan)
        raise Invalid(f"plan must be one of {known}", {"plan": f"must be one of {known}"}) from None
