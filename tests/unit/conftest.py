"""Use cases built by hand over in-memory adapters: no network, no services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

import hermes.adapters.platforms  # noqa: F401 - declares the platforms the tests name
from hermes.adapters.crypto.aes_gcm import AesGcmCipher, parse_keyring
from hermes.adapters.memory.customers import InMemoryCustomerCache, InMemoryCustomerDirectory
from hermes.adapters.memory.mailboxes import InMemoryMailboxes
from hermes.adapters.memory.sends import (
    InMemoryIdempotencyKeys,
    InMemoryPendingSends,
    InMemoryPolicyStore,
    InMemoryRecipientLedger,
)
from hermes.adapters.memory.stores import (
    InMemoryAccountRoutes,
    InMemoryAuditLog,
    InMemoryCredentialStore,
    InMemoryRateLimiter,
    InMemoryUsageMeter,
)
from hermes.adapters.platforms import email, whatsapp
from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.platform_inbound import InboundSide
from hermes.application.ports.sessions import SessionRevoker
from hermes.application.send_guard import SendGuard
from hermes.application.use_cases.create_customer import CreateCustomer
from hermes.application.use_cases.resolve_customer import ResolveCustomer
from hermes.domain.credentials import Credentials
from hermes.domain.platform import Platform
from tests.support import new_keyring


class FixedClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2026, 5, 8, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current


class RecordingSessions(SessionRevoker):
    def __init__(self) -> None:
        self.revoked: list[str] = []

    async def revoke_customer(self, customer_id: str) -> None:
        self.revoked.append(customer_id)


class FakeVerifier:
    """Accepts credentials unless told which platforms refuse them."""

    def __init__(self) -> None:
        self.refuse: set[Platform] = set()
        self.calls: list[tuple[Platform, Credentials]] = []

    async def verify(self, platform: Platform, credentials: Credentials) -> None:
        from hermes.domain.errors import PlatformRejected

        self.calls.append((platform, credentials))
        if platform in self.refuse:
            raise PlatformRejected(platform.value, "token refused", code="190", reconnect=True)


class InboundOf(dict[Platform, InboundSide]):
    """The inbound sides the use cases see: WhatsApp's and email's, as declared (they need no network)."""

    def inbound(self, platform: Platform) -> InboundSide | None:
        return self.get(platform)


@dataclass
class World:
    """Every in-memory adapter, shared by the use cases a test builds."""

    directory: InMemoryCustomerDirectory = field(default_factory=InMemoryCustomerDirectory)
    cache: InMemoryCustomerCache = field(default_factory=InMemoryCustomerCache)
    store: InMemoryCredentialStore = field(default_factory=InMemoryCredentialStore)
    routes: InMemoryAccountRoutes = field(default_factory=InMemoryAccountRoutes)
    mailboxes: InMemoryMailboxes = field(default_factory=InMemoryMailboxes)
    limiter: InMemoryRateLimiter = field(default_factory=InMemoryRateLimiter)
    usage: InMemoryUsageMeter = field(default_factory=InMemoryUsageMeter)
    audit: InMemoryAuditLog = field(default_factory=InMemoryAuditLog)
    sessions: RecordingSessions = field(default_factory=RecordingSessions)
    verifier: FakeVerifier = field(default_factory=FakeVerifier)
    inbound: InboundOf = field(
        default_factory=lambda: InboundOf({Platform.WHATSAPP: whatsapp.INBOUND, Platform.EMAIL: email.INBOUND})
    )
    clock: FixedClock = field(default_factory=FixedClock)
    cipher: AesGcmCipher = field(default_factory=lambda: AesGcmCipher(parse_keyring(new_keyring())))
    policies: InMemoryPolicyStore = field(default_factory=InMemoryPolicyStore)
    idempotency: InMemoryIdempotencyKeys = field(default_factory=InMemoryIdempotencyKeys)
    ledger: InMemoryRecipientLedger = field(default_factory=InMemoryRecipientLedger)
    pending: InMemoryPendingSends = field(default_factory=InMemoryPendingSends)

    @property
    def guard(self) -> SendGuard:
        return SendGuard(
            self.policies,
            self.idempotency,
            self.ledger,
            self.pending,
            self.cipher,
            self.clock,
            approval_url="https://hermes.example/console/approvals/",
            in_flight_seconds=2.0,
            poll_seconds=0.01,
        )

    @property
    def vault(self) -> CredentialVault:
        return CredentialVault(self.cipher, self.store)

    @property
    def resolve(self) -> ResolveCustomer:
        return ResolveCustomer(self.directory, self.cache, self.limiter)

    @property
    def create(self) -> CreateCustomer:
        return CreateCustomer(self.directory, self.clock)


@pytest.fixture
def world() -> World:
    return World()
