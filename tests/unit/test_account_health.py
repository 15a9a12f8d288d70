"""Account health: the rules (what flips an account, what is written, what the callback hears), the
schedule of background checks (each account at most once per interval, spread over time, one claimant),
several accounts per platform in tool calls and listings, and key rotation over every account."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from hermes.adapters.env_credentials import EnvironmentCredentials
from hermes.adapters.memory.account_health import InMemoryAccountSchedule
from hermes.adapters.memory.inbound import InMemoryCallbackStore, InMemoryInbox
from hermes.adapters.memory.managed_oauth import InMemoryAccountStatuses
from hermes.adapters.platforms.registry import PlatformPlugin, Registry
from hermes.application.account_health import AccountHealthRecorder
from hermes.application.account_overview import SeparateAccountOverview
from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.inbound import InboundHandler
from hermes.application.ports.managed_oauth import AccountStatuses
from hermes.application.ports.tools import ToolContext, ToolSpec
from hermes.application.tool_accounts import split_account, with_accounts
from hermes.application.use_cases.call_tool import Caller, CallTool
from hermes.application.use_cases.check_account_health import CheckAccountHealth
from hermes.application.use_cases.list_accounts import ListAccounts
from hermes.application.use_cases.list_tools import ListTools
from hermes.application.use_cases.rotate_encryption_keys import RotateEncryptionKeys
from hermes.domain.account_health import JITTER, AccountRef, first_check, next_check
from hermes.domain.credentials import Credentials
from hermes.domain.errors import HermesError, Invalid, PlatformRejected
from hermes.domain.inbound import ConnectionEvent, InboxEntry
from hermes.domain.managed_oauth import AccountHealth, AccountStatus
from hermes.domain.platform import Platform
from tests.support import new_keyring
from tests.unit.conftest import World
from tests.unit.test_cipher import cipher

HOUR = 3600.0
MISMATCH = "does not authenticate"


class Told(InboundHandler):
    def __init__(self) -> None:
        self.entries: list[InboxEntry] = []

    async def handle(self, customer_id: str, entries: Sequence[InboxEntry]) -> None:
        self.entries.extend(entries)


class CountingStatuses(InMemoryAccountStatuses):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    async def put(self, customer_id: str, status: AccountStatus) -> None:
        self.writes += 1
        await super().put(customer_id, status)


def recorder(world: World, statuses: AccountStatuses | None = None) -> tuple[AccountHealthRecorder, Told]:
    told = Told()
    health = AccountHealthRecorder(
        statuses or InMemoryAccountStatuses(), InMemoryInbox(), told, world.clock, InMemoryAccountSchedule()
    )
    return health, told


def revoked() -> PlatformRejected:
    return PlatformRejected("telegram", "Telegram refused the bot token", code="401", reconnect=True)


# --- rules -----------------------------------------------------------------------------------------


def test_account_refs_round_trip_even_with_colons_in_the_customer_id() -> None:
    ref = AccountRef("cust:odd", Platform.WHATSAPP, "shop-2")
    assert AccountRef.from_key(ref.key()) == ref
    assert AccountRef.from_key("cust_x:myspace:default") is None


def test_a_check_comes_one_interval_later_plus_at_most_a_fifth_and_a_first_one_anywhere_in_the_interval() -> None:
    rng = random.Random(7)
    later = [next_check(1000.0, 6 * HOUR, rng.uniform) - 1000.0 for _ in range(2000)]
    first = [first_check(1000.0, 6 * HOUR, rng.uniform) - 1000.0 for _ in range(2000)]
    assert min(later) >= 6 * HOUR and max(later) <= 6 * HOUR * (1 + JITTER)
    assert 0 <= min(first) < 0.05 * 6 * HOUR and 0.95 * 6 * HOUR < max(first) <= 6 * HOUR


async def test_a_success_writes_only_when_the_status_changes(world: World) -> None:
    statuses = CountingStatuses()
    health, _ = recorder(world, statuses)
    await health.connected("c1", Platform.TELEGRAM, "default")
    assert statuses.writes == 1
    for _ in range(5):
        await health.after_call("c1", Platform.TELEGRAM, "default", None)
    assert statuses.writes == 1  # healthy calls cost a read, never a write
    await health.after_call("c1", Platform.TELEGRAM, "default", revoked())
    await health.after_call("c1", Platform.TELEGRAM, "default", None)
    assert statuses.writes == 3
    record = await statuses.get("c1", Platform.TELEGRAM, "default")
    assert record is not None and record.status is AccountHealth.CONNECTED and record.connected_at is not None


async def test_revoked_credentials_flip_the_account_once_and_the_callback_hears_it_once(world: World) -> None:
    health, told = recorder(world)
    for _ in range(3):
        error = revoked()
        await health.after_call("c1", Platform.TELEGRAM, "work", error)
        assert error.fix == "reconnect Telegram (account work) in Hermes"
    record = await health.statuses.get("c1", Platform.TELEGRAM, "work")
    assert record is not None and record.status is AccountHealth.NEEDS_REAUTH
    assert record.last_error == "Telegram refused the bot token"
    assert [(e.kind, e.item) for e in told.entries] == [
        ("connection", ConnectionEvent(Platform.TELEGRAM, "work", "connection.needs_reauth", world.clock.now()))
    ]


async def test_a_call_that_fails_for_another_reason_says_nothing_about_the_account(world: World) -> None:
    health, told = recorder(world)
    await health.connected("c1", Platform.TELEGRAM, "default")
    await health.after_call("c1", Platform.TELEGRAM, "default", PlatformRejected("telegram", "chat not found"))
    record = await health.statuses.get("c1", Platform.TELEGRAM, "default")
    assert record is not None and record.status is AccountHealth.CONNECTED and not told.entries


async def test_a_store_failure_while_recording_never_hides_the_calls_own_answer(world: World) -> None:
    class Down(InMemoryAccountStatuses):
        async def get(self, *args: Any) -> AccountStatus | None:
            raise HermesError("redis is down")

    health, _ = recorder(world, Down())
    await health.after_call("c1", Platform.TELEGRAM, "default", revoked())  # does not raise
    await health.after_call("c1", Platform.TELEGRAM, "default", None)


# --- the schedule and the background check ---------------------------------------------------------


async def test_checks_are_spread_and_each_account_is_checked_at_most_once_per_interval(world: World) -> None:
    """2,000 accounts stored before checks existed, a 6-hour interval, one pass a minute for a day."""
    interval = 6 * HOUR
    statuses = InMemoryAccountStatuses()
    health, _ = recorder(world, statuses)
    checked: dict[str, list[float]] = {}

    class Counting:
        async def verify(self, platform: Platform, credentials: Credentials) -> None:
            checked.setdefault(str(credentials["botToken"]), []).append(world.clock.now().timestamp())

    for i in range(2000):
        await world.vault.save(f"c{i}", Platform.TELEGRAM, {"botToken": f"t{i}"})
    assert health.schedule is not None
    check = CheckAccountHealth(
        world.vault,
        Counting(),
        health.schedule,
        health,
        world.clock,
        interval=interval,
        batch=500,
        uniform=random.Random(3).uniform,
    )
    assert await check.schedule_unscheduled() == 2000
    assert await check.schedule_unscheduled() == 0  # idempotent: another instance starting adds nothing
    per_minute: list[int] = []
    start = world.clock.now()
    for minute in range(24 * 60):
        world.clock.current = start + timedelta(minutes=minute)
        done = 0
        while True:
            result = await check()
            done += result.checked
            if not result.more:
                break
        per_minute.append(done)

    gaps = [b - a for times in checked.values() for a, b in itertools.pairwise(times)]
    assert len(checked) == 2000 and min(gaps) >= interval
    assert all(3 <= len(times) <= 4 for times in checked.values())
    # Spread: an even share is 2000 / 360 ≈ 5.6 a minute; no minute comes close to a stampede.
    assert max(per_minute) <= 25
    states = await ListAccounts(SeparateAccountOverview(world.vault.store, statuses))("c7")
    assert [(s.status, s.last_checked_at is not None) for s in states] == [(AccountHealth.CONNECTED, True)]


async def test_the_check_marks_revoked_as_needs_reauth_other_failures_as_failing_and_forgets_deleted(
    world: World,
) -> None:
    health, told = recorder(world)
    assert health.schedule is not None

    class Answers:
        async def verify(self, platform: Platform, credentials: Credentials) -> None:
            token = credentials["botToken"]
            if token == "revoked":
                raise revoked()
            if token == "down":
                raise PlatformRejected("telegram", "Telegram answered 502", retry_after=30)

    for name in ("revoked", "down", "fine", "deleted"):
        await world.vault.save("c1", Platform.TELEGRAM, {"botToken": name}, name)
    check = CheckAccountHealth(world.vault, Answers(), health.schedule, health, world.clock)
    await check.schedule_unscheduled()
    await world.vault.remove("c1", Platform.TELEGRAM, "deleted")
    world.clock.current += timedelta(hours=6)
    assert (await check()).checked == 3
    by_name = {s.account: s for s in await health.statuses.all("c1")}
    assert by_name["revoked"].status is AccountHealth.NEEDS_REAUTH
    assert by_name["down"].status is AccountHealth.FAILING and by_name["down"].last_error == "Telegram answered 502"
    assert by_name["fine"].status is AccountHealth.CONNECTED
    assert "deleted" not in by_name and await health.schedule.size() == 3
    assert [e.item.account for e in told.entries if isinstance(e.item, ConnectionEvent)] == ["revoked"]


# --- several accounts in tool calls ----------------------------------------------------------------


class Recording:
    spec = ToolSpec(
        "telegram_send_message",
        Platform.TELEGRAM,
        "send",
        {"type": "object", "properties": {"text": {"type": "string"}}, "additionalProperties": False},
    )

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.fail: Exception | None = None

    def parse(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        if set(arguments) - {"text"}:
            raise Invalid("unknown argument", {sorted(set(arguments) - {"text"})[0]: "unknown"})
        return dict(arguments)

    def target(self, parsed: Any) -> str | None:
        return None

    async def run(self, parsed: Any, context: ToolContext) -> dict[str, Any]:
        assert context.credentials is not None
        self.tokens.append(str(context.credentials["botToken"]))
        if self.fail:
            raise self.fail
        return {"ok": True}


async def _noop(_: Any) -> None:
    return None


async def test_a_call_acts_for_the_account_it_names_and_its_answer_sets_that_accounts_health(world: World) -> None:
    tool = Recording()
    env = EnvironmentCredentials({})
    registry = Registry(plugins=[PlatformPlugin(Platform.TELEGRAM, [tool], _noop)])
    health, told = recorder(world)
    call = CallTool(registry, world.vault, env, world.usage, world.audit, world.clock, world.guard, health=health)
    customer = await world.create("acc@example.com", "starter")
    caller = Caller(customer.customer)
    await world.vault.save(customer.customer.id, Platform.TELEGRAM, {"botToken": "mine"})
    await world.vault.save(customer.customer.id, Platform.TELEGRAM, {"botToken": "theirs"}, "work")

    listed = {s.name: s for s in await ListTools(registry, world.vault, env)(caller)}
    assert listed["telegram_send_message"].input_schema["properties"]["account"]["enum"] == ["default", "work"]

    tool.fail = PlatformRejected("telegram", "Unauthorized", code="401", reconnect=True)
    with pytest.raises(PlatformRejected):
        await call(caller, "telegram_send_message", {"text": "a", "account": "work"})
    tool.fail = None
    await call(caller, "telegram_send_message", {"text": "b"})
    assert tool.tokens == ["theirs", "mine"]
    list_accounts = ListAccounts(SeparateAccountOverview(world.vault.store, health.statuses))
    states = {s.account: s.status for s in await list_accounts(customer.customer.id)}
    assert states == {"default": AccountHealth.CONNECTED, "work": AccountHealth.NEEDS_REAUTH}
    entries, _ = await world.audit.list(customer.customer.id, world.clock.now().date())
    assert [e.account for e in entries] == ["work", "default"]
    assert len(told.entries) == 1

    with pytest.raises(Invalid) as bad:
        await call(caller, "telegram_send_message", {"text": "c", "account": "Not Valid"})
    assert bad.value.fields == {"account": "must match [a-z0-9_-]{1,32}"}


def test_only_platforms_with_several_accounts_show_the_argument() -> None:
    specs = [Recording.spec, ToolSpec("inbox_list", None, "read", {"type": "object", "properties": {}})]
    assert with_accounts(specs, {Platform.TELEGRAM: ["default"]}) == specs
    shown = with_accounts(specs, {Platform.TELEGRAM: ["default", "shop"]})
    assert shown[0].input_schema["properties"]["account"]["enum"] == ["default", "shop"]
    assert shown[1] == specs[1]
    assert split_account(Recording.spec, {"text": "x"}) == ("default", {"text": "x"})
    assert split_account(Recording.spec, {"text": "x", "account": "shop"}) == ("shop", {"text": "x"})
    assert split_account(specs[1], {"account": "shop"}) == ("default", {"account": "shop"})  # not a platform tool


# --- key rotation ----------------------------------------------------------------------------------


async def test_rotation_reseals_every_account_and_each_stays_bound_to_its_own_name() -> None:
    world = World()
    old_ring = new_keyring("old")
    old = CredentialVault(cipher(old_ring), world.store)
    await old.save("c1", Platform.WHATSAPP, {"accessToken": "personal"})
    await old.save("c1", Platform.WHATSAPP, {"accessToken": "shop"}, "shop")
    new_cipher = cipher(new_keyring("new") + "," + old_ring)

    report = await RotateEncryptionKeys(new_cipher, world.store, InMemoryCallbackStore())()

    assert (report.rotated, report.unreadable) == (2, 0)
    vault = CredentialVault(new_cipher, world.store)
    assert await vault.load("c1", Platform.WHATSAPP) == {"accessToken": "personal"}
    assert await vault.load("c1", Platform.WHATSAPP, "shop") == {"accessToken": "shop"}
    assert all(new_cipher.is_current(e) for e in world.store.envelopes.values())
    # An envelope copied from one account to another does not open there.
    envelopes = world.store.envelopes
    envelopes[("c1", Platform.WHATSAPP, "default")] = envelopes[("c1", Platform.WHATSAPP, "shop")]
    with pytest.raises(ValueError, match=MISMATCH):
        await vault.load("c1", Platform.WHATSAPP)
