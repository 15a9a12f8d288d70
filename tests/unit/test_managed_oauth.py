"""Managed OAuth over in-memory adapters: links, the callback's state rules, refresh ahead of expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest

from hermes.adapters.crypto.aes_gcm import AesGcmCipher, parse_keyring
from hermes.adapters.memory.account_health import InMemoryAccountSchedule, InMemoryBackfillProgress
from hermes.adapters.memory.customers import InMemoryCustomerDirectory
from hermes.adapters.memory.inbound import InMemoryCallbackStore
from hermes.adapters.memory.managed_oauth import InMemoryAccountStatuses, InMemoryConnectRequests, InMemoryRefreshLocks
from hermes.adapters.memory.stores import InMemoryCredentialStore
from hermes.application.credential_vault import CredentialVault
from hermes.application.fresh_credentials import FreshCredentials
from hermes.application.token_renewals import TokenRenewals
from hermes.application.use_cases.complete_platform_consent import CompletePlatformConsent
from hermes.application.use_cases.create_connect_link import CreateConnectLink, pkce_challenge
from hermes.application.use_cases.once_per_deployment import OncePerDeployment
from hermes.application.use_cases.refresh_expiring_credentials import RefreshExpiringCredentials
from hermes.application.use_cases.rotate_encryption_keys import RotateEncryptionKeys
from hermes.domain.account_health import AccountRef
from hermes.domain.credentials import Credentials
from hermes.domain.errors import Forbidden, NotConnected, NotFound, PlatformRejected
from hermes.domain.managed_oauth import AccountHealth
from hermes.domain.platform import Platform
from tests.support import new_keyring
from tests.unit.conftest import FixedClock

X = Platform.TWITTER


class ScriptedAuthorization:
    """A platform whose token endpoint rotates refresh tokens; it can be told to refuse or to take its time."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.refreshes: list[str] = []
        self.refuse = False
        self.pause = 0.0
        self.exchanged: list[tuple[str, str | None, str]] = []

    def platforms(self) -> Sequence[Platform]:
        return [X]

    def uses_pkce(self, platform: Platform) -> bool:
        return True

    def refresh_ahead(self, platform: Platform) -> float:
        return 20 * 60

    def renewable(self, platform: Platform, credentials: Credentials) -> bool:
        return "refreshToken" in credentials

    def authorize_url(self, platform: Platform, state: str, code_challenge: str | None, redirect_uri: str) -> str:
        return f"https://x.test/authorize?state={state}&code_challenge={code_challenge}"

    def _issued(self, n: int, lifetime: int) -> Credentials:
        ends = int((self.clock.now() + timedelta(seconds=lifetime)).timestamp())
        return {"accessToken": f"access-{n}", "refreshToken": f"refresh-{n}", "expiresAt": ends}

    async def exchange(
        self, platform: Platform, code: str, code_verifier: str | None, redirect_uri: str
    ) -> Credentials:
        self.exchanged.append((code, code_verifier, redirect_uri))
        return self._issued(0, 60)

    async def refresh(self, platform: Platform, credentials: Credentials) -> Credentials:
        self.refreshes.append(str(credentials["refreshToken"]))
        await asyncio.sleep(self.pause)
        if self.refuse:
            raise PlatformRejected(platform.value, "X refused the authorization", code="invalid_grant", reconnect=True)
        return self._issued(len(self.refreshes), 7200)


class Setup:
    def __init__(self) -> None:
        self.clock = FixedClock()
        self.auth = ScriptedAuthorization(self.clock)
        self.store = InMemoryCredentialStore()
        self.vault = CredentialVault(AesGcmCipher(parse_keyring(new_keyring())), self.store)
        self.requests = InMemoryConnectRequests()
        self.statuses = InMemoryAccountStatuses()
        self.directory = InMemoryCustomerDirectory()
        self.links = CreateConnectLink(self.auth, self.requests, self.clock, "https://hermes.example")
        self.schedule = InMemoryAccountSchedule()
        self.renewals = TokenRenewals(self.auth, self.schedule)
        self.locks = InMemoryRefreshLocks()
        self.fresh = FreshCredentials(
            self.vault, self.auth, self.statuses, self.locks, self.clock, self.links, renewals=self.renewals
        )
        self.complete = CompletePlatformConsent(
            self.auth, self.requests, self.vault, self.statuses, self.directory, self.clock, renewals=self.renewals
        )
        self.sweep = RefreshExpiringCredentials(self.fresh, self.renewals)

    def renews_at(self, customer_id: str) -> float | None:
        return self.schedule.due.get(AccountRef(customer_id, X, "default"))

    def issued_renewal(self, credentials: Credentials) -> float:
        return int(credentials["expiresAt"]) - self.auth.refresh_ahead(X)


@pytest.fixture
def s() -> Setup:
    return Setup()


async def _customer(s: Setup) -> str:
    from hermes.application.use_cases.create_customer import CreateCustomer
    from hermes.domain.plan import Plan

    created = await CreateCustomer(s.directory, s.clock)("owner@example.com", Plan.STARTER.value)
    return created.customer.id


def _state(url: str) -> str:
    return url.split("state=", 1)[1].split("&", 1)[0]


async def test_a_link_is_spent_by_its_callback_and_stores_the_tokens(s: Setup) -> None:
    customer = await _customer(s)
    link = await s.links(customer, X, "default")
    assert link.expires_at == s.clock.now() + timedelta(minutes=15)
    state = _state(link.url)
    challenge = link.url.rsplit("code_challenge=", 1)[1]

    await s.complete(X, state, "the-code")

    code, verifier, redirect = s.auth.exchanged[0]
    assert code == "the-code"
    assert verifier is not None and pkce_challenge(verifier) == challenge
    assert redirect == "https://hermes.example/connect/callback/twitter"
    assert (await s.vault.load(customer, X) or {})["refreshToken"] == "refresh-0"
    status = await s.statuses.get(customer, X, "default")
    assert status is not None and status.status is AccountHealth.CONNECTED
    with pytest.raises(Forbidden):
        await s.complete(X, state, "the-code")  # a state works once
    assert all(state not in key for key in s.requests.requests)  # only its digest was ever stored


async def test_a_state_for_another_platform_or_past_its_time_is_refused(s: Setup) -> None:
    customer = await _customer(s)
    with pytest.raises(Forbidden):
        await s.complete(Platform.LINKEDIN, _state((await s.links(customer, X, "default")).url), "code")
    late = _state((await s.links(customer, X, "default")).url)
    s.clock.current += timedelta(minutes=16)
    with pytest.raises(Forbidden):
        await s.complete(X, late, "code")
    assert await s.vault.load(customer, X) is None


async def test_a_platform_without_a_client_has_no_link(s: Setup) -> None:
    with pytest.raises(NotFound, match="twitter"):
        await s.links("cust_1", Platform.LINKEDIN, "default")


async def test_concurrent_callers_refresh_once_and_all_get_the_new_token(s: Setup) -> None:
    await s.vault.save("cust_1", X, s.auth._issued(0, 60))
    stale = await s.vault.load("cust_1", X)
    assert stale is not None
    s.auth.pause = 0.05
    results = await asyncio.gather(*(s.fresh("cust_1", X, dict(stale)) for _ in range(5)))
    assert s.auth.refreshes == ["refresh-0"]
    assert {r["accessToken"] for r in results} == {"access-1"}
    assert (await s.vault.load("cust_1", X) or {})["refreshToken"] == "refresh-1"


async def test_tokens_far_from_expiry_or_without_a_refresh_token_are_used_as_they_are(s: Setup) -> None:
    creds = s.auth._issued(0, 7200)
    assert await s.fresh("cust_1", X, creds) is creds
    no_grant = {k: v for k, v in s.auth._issued(0, 60).items() if k != "refreshToken"}
    assert await s.fresh("cust_1", X, no_grant) is no_grant
    assert s.auth.refreshes == []


async def test_a_passing_failure_to_renew_early_keeps_the_valid_token(s: Setup) -> None:
    await s.vault.save("cust_1", X, s.auth._issued(0, 60))
    creds = await s.vault.load("cust_1", X) or {}

    async def timed_out(platform: Platform, credentials: Credentials) -> Credentials:
        raise PlatformRejected(platform.value, "X did not answer in time", code="timeout")

    s.auth.refresh = timed_out  # type: ignore[method-assign]
    assert await s.fresh("cust_1", X, creds) == creds
    s.clock.current += timedelta(minutes=2)  # now past its end: the failure is the caller's
    with pytest.raises(PlatformRejected, match="in time"):
        await s.fresh("cust_1", X, creds)


async def test_a_refused_refresh_marks_the_account_and_the_error_carries_a_new_link(s: Setup) -> None:
    await s.vault.save("cust_1", X, s.auth._issued(0, 60))
    s.auth.refuse = True
    with pytest.raises(PlatformRejected) as caught:
        await s.fresh("cust_1", X, await s.vault.load("cust_1", X) or {})
    assert caught.value.reconnect and "https://x.test/authorize?state=" in caught.value.fix
    status = await s.statuses.get("cust_1", X, "default")
    assert status is not None and status.status is AccountHealth.NEEDS_REAUTH
    assert status.last_error and "refused" in status.last_error


async def test_callers_waiting_on_a_refused_refresh_do_not_ask_again(s: Setup) -> None:
    await s.vault.save("cust_1", X, s.auth._issued(0, 60))
    creds = await s.vault.load("cust_1", X) or {}
    s.auth.refuse, s.auth.pause = True, 0.05
    results = await asyncio.gather(*(s.fresh("cust_1", X, dict(creds)) for _ in range(3)), return_exceptions=True)
    assert s.auth.refreshes == ["refresh-0"]
    assert all(isinstance(r, PlatformRejected) and r.reconnect and "https://x.test/" in r.fix for r in results)


async def test_a_refresh_never_brings_back_a_deleted_account(s: Setup) -> None:
    await s.vault.save("cust_1", X, s.auth._issued(0, 60))
    creds = await s.vault.load("cust_1", X) or {}
    s.auth.pause = 0.1
    refreshing = asyncio.create_task(s.fresh("cust_1", X, creds))
    await asyncio.sleep(0.02)
    await s.vault.remove("cust_1", X)
    with pytest.raises(NotConnected):
        await refreshing
    assert await s.vault.load("cust_1", X) is None


class CountingStore(InMemoryCredentialStore):
    """Counts the envelopes read: what a sweep opens."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    async def get(self, customer_id: str, platform: Platform, account: str = "default") -> bytes | None:
        self.reads.append(customer_id)
        return await super().get(customer_id, platform, account)

    async def scan(self) -> AsyncIterator[tuple[str, Platform, str, bytes]]:
        async for entry in super().scan():
            self.reads.append(entry[0])
            yield entry


async def stored_before_the_schedule(s: Setup) -> None:
    """Tokens stored by a version that kept no renewal schedule: only the one-time walk finds them."""
    await s.vault.save("cust_due", X, s.auth._issued(0, 60))
    await s.vault.save("cust_fine", X, s.auth._issued(9, 7200))
    await s.vault.save("cust_bot", Platform.TELEGRAM, {"botToken": "123:abc"})
    await s.vault.save("cust_pasted", X, {"accessToken": "pasted by hand"})


async def test_the_walk_schedules_stored_tokens_once_and_the_sweep_renews_only_what_is_due(s: Setup) -> None:
    await stored_before_the_schedule(s)
    assert (await s.sweep()).renewed == 0  # nothing scheduled yet
    progress = InMemoryBackfillProgress()
    walk = await OncePerDeployment(s.sweep.schedule_page, progress, page=2, pause=0.0)()
    assert (walk.done, walk.added) == (True, 2)  # the two renewable X accounts; not the bot, not the pasted token
    assert (await OncePerDeployment(s.sweep.schedule_page, progress)()).steps == 0  # once per deployment

    assert (await s.sweep()).renewed == 1
    assert s.auth.refreshes == ["refresh-0"]
    renewed = await s.vault.load("cust_due", X) or {}
    assert s.renews_at("cust_due") == s.issued_renewal(renewed)  # its next turn: before the new token ends
    assert (await s.sweep()).renewed == 0 and s.auth.refreshes == ["refresh-0"]


async def test_a_sweep_opens_only_the_credentials_that_are_due(s: Setup) -> None:
    store = CountingStore()
    s.vault.store = store
    for n in range(40):
        fine = s.auth._issued(n, 7200)
        await s.vault.save(f"cust_{n}", X, fine)
        await s.renewals.track(f"cust_{n}", X, "default", fine)
    due = s.auth._issued(99, 60)
    await s.vault.save("cust_due", X, due)
    await s.renewals.track("cust_due", X, "default", due)
    store.reads.clear()
    assert (await s.sweep()).renewed == 1
    assert set(store.reads) == {"cust_due"}


async def test_a_consent_schedules_the_renewal_and_an_unused_account_is_renewed_in_time(s: Setup) -> None:
    customer = await _customer(s)
    await s.complete(X, _state((await s.links(customer, X, "default")).url), "the-code")
    stored = await s.vault.load(customer, X) or {}
    assert s.renews_at(customer) == s.issued_renewal(stored)
    assert (await s.sweep()).renewed == 1  # the consent's token lives 60 s: inside the margin at once
    assert (await s.vault.load(customer, X) or {})["refreshToken"] == "refresh-1"


async def test_two_instances_sweeping_at_once_renew_an_account_once(s: Setup) -> None:
    await s.vault.save("cust_1", X, s.auth._issued(0, 60))
    await s.renewals.track("cust_1", X, "default", s.auth._issued(0, 60))
    other = RefreshExpiringCredentials(s.fresh, TokenRenewals(s.auth, s.schedule))
    s.auth.pause = 0.05
    passes = await asyncio.gather(s.sweep(), other())
    assert sorted(p.renewed for p in passes) == [0, 1]
    assert s.auth.refreshes == ["refresh-0"]


async def test_a_refused_renewal_takes_the_account_out_until_the_owner_reconnects(s: Setup) -> None:
    creds = s.auth._issued(0, 60)
    await s.vault.save("cust_1", X, creds)
    await s.renewals.track("cust_1", X, "default", creds)
    s.auth.refuse = True
    assert (await s.sweep()).renewed == 0
    status = await s.statuses.get("cust_1", X, "default")
    assert status is not None and status.status is AccountHealth.NEEDS_REAUTH
    assert s.renews_at("cust_1") is None
    s.clock.current += timedelta(hours=1)
    await s.sweep()
    assert s.auth.refreshes == ["refresh-0"]  # the refused grant is not offered again


async def test_a_passing_failure_is_retried_when_the_lease_ends(s: Setup) -> None:
    creds = s.auth._issued(0, 60 * 60)  # due (20 minutes ahead of 60) but still valid for an hour
    s.clock.current += timedelta(minutes=41)
    await s.vault.save("cust_1", X, creds)
    await s.renewals.track("cust_1", X, "default", creds)
    answer = s.auth.refresh

    async def timed_out(platform: Platform, credentials: Credentials) -> Credentials:
        raise PlatformRejected(platform.value, "X did not answer in time", code="timeout")

    s.auth.refresh = timed_out  # type: ignore[method-assign]
    assert (await s.sweep()).renewed == 0
    s.auth.refresh = answer  # type: ignore[method-assign]
    assert (await s.sweep()).renewed == 0  # leased: not claimed again at once
    s.clock.current += timedelta(seconds=s.sweep.lease + 1)
    assert (await s.sweep()).renewed == 1


async def test_entries_that_no_longer_match_what_is_stored_are_dropped_without_a_renewal(s: Setup) -> None:
    for customer in ("cust_gone", "cust_pasted", "cust_renewed"):
        await s.renewals.track(customer, X, "default", s.auth._issued(0, 60))
    await s.vault.save("cust_pasted", X, {"accessToken": "pasted by hand"})  # connected again by hand
    fine = s.auth._issued(5, 7200)
    await s.vault.save("cust_renewed", X, fine)  # renewed by a version that kept no schedule
    assert (await s.sweep()).renewed == 0
    assert s.auth.refreshes == []
    assert s.renews_at("cust_gone") is None and s.renews_at("cust_pasted") is None
    assert s.renews_at("cust_renewed") == s.issued_renewal(fine)


async def test_a_renewal_in_flight_when_the_account_is_deleted_leaves_it_deleted(s: Setup) -> None:
    creds = s.auth._issued(0, 60)
    await s.vault.save("cust_1", X, creds)
    await s.renewals.track("cust_1", X, "default", creds)
    s.auth.pause = 0.1
    sweeping = asyncio.create_task(s.sweep())
    await asyncio.sleep(0.02)
    await s.vault.remove("cust_1", X)
    await s.renewals.forget("cust_1", X, "default")
    assert (await sweeping).renewed == 0
    assert await s.vault.load("cust_1", X) is None and s.renews_at("cust_1") is None


async def test_key_rotation_reseals_refresh_tokens_with_the_rest_of_the_envelope(s: Setup) -> None:
    old_ring, new_ring = new_keyring("old"), new_keyring("new")
    store = InMemoryCredentialStore()
    await CredentialVault(AesGcmCipher(parse_keyring(old_ring)), store).save("cust_1", X, s.auth._issued(0, 60))

    report = await RotateEncryptionKeys(
        AesGcmCipher(parse_keyring(f"{new_ring},{old_ring}")), store, InMemoryCallbackStore()
    )()

    assert report.rotated == 1
    # Once the old key is gone from the keyring, the refresh token still opens: it was re-sealed too.
    reopened = await CredentialVault(AesGcmCipher(parse_keyring(new_ring)), store).load("cust_1", X)
    assert reopened is not None and reopened["refreshToken"] == "refresh-0"


async def test_the_connect_link_tool_names_the_argument_at_fault(s: Setup) -> None:
    from hermes.application.connect_link_tool import ConnectLinkTool
    from hermes.application.ports.tools import ToolContext
    from hermes.domain.errors import Conflict, Invalid

    tool = ConnectLinkTool(s.links, [X])
    assert tool.spec.input_schema["properties"]["platform"]["enum"] == ["twitter"]
    with pytest.raises(Invalid) as bad_platform:
        tool.parse({"platform": "whatsapp"})
    assert "platform" in bad_platform.value.fields
    with pytest.raises(Invalid) as bad_account:
        tool.parse({"platform": "twitter", "account": "Work Account"})
    assert "account" in bad_account.value.fields
    made = await tool.run(tool.parse({"platform": "twitter"}), ToolContext("cust_1"))
    assert made["url"].startswith("https://x.test/authorize?state=") and made["expires_at"].endswith("Z")
    with pytest.raises(Conflict):
        await tool.run(tool.parse({"platform": "twitter"}), ToolContext(None))


async def test_disconnecting_an_account_takes_it_out_of_the_renewal_schedule(s: Setup) -> None:
    from hermes.adapters.memory.inbound import InMemoryInbox
    from hermes.application.account_health import AccountHealthRecorder
    from tests.unit.test_account_health import Told

    recorder = AccountHealthRecorder(s.statuses, InMemoryInbox(), Told(), s.clock, renewals=s.renewals)
    creds = s.auth._issued(0, 7200)
    await s.renewals.track("cust_1", X, "default", creds)
    await s.renewals.track("cust_1", Platform.TELEGRAM, "default", creds)  # not a managed platform: no turn
    assert s.renews_at("cust_1") == s.issued_renewal(creds) and await s.schedule.size() == 1
    await recorder.disconnected("cust_1", X, "default")
    assert await s.schedule.size() == 0
