"""CallTool: one application path for every tool (seed flows 1 and 3), audited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from hermes.adapters.env_credentials import EnvironmentCredentials
from hermes.adapters.platforms.registry import PlatformPlugin, Registry
from hermes.application.builtin_tools import ConnectionsStatusTool
from hermes.application.ports.tools import ToolContext, ToolSpec
from hermes.application.use_cases.call_tool import Caller, CallTool
from hermes.application.use_cases.connect_platform import ConnectPlatform
from hermes.application.use_cases.get_connections import GetConnections
from hermes.application.use_cases.list_tools import ListTools
from hermes.domain.audit import SINGLE_USER_ID
from hermes.domain.customer import Customer
from hermes.domain.errors import Conflict, Invalid, NotConnected, NotFound, PlatformRejected, RateLimited
from hermes.domain.plan import Plan
from hermes.domain.platform import Platform
from hermes.entrypoints.http.problems import error_text
from tests.support import whatsapp_credentials
from tests.unit.conftest import World


@dataclass
class EchoTool:
    """A platform tool that records the credentials it ran with, or fails as told."""

    spec: ToolSpec = field(
        default_factory=lambda: ToolSpec("whatsapp_send_message", Platform.WHATSAPP, "send", {"type": "object"})
    )
    runs: list[ToolContext] = field(default_factory=list)
    fail_with: Exception | None = None

    def parse(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        if "to" not in arguments:
            raise Invalid("to is required", {"to": "is required"})
        return dict(arguments)

    def target(self, parsed: Any) -> str | None:
        return str(parsed["to"])

    async def run(self, parsed: Any, context: ToolContext) -> dict[str, Any]:
        self.runs.append(context)
        if self.fail_with:
            raise self.fail_with
        return {"success": True, "message_id": "wamid.1"}


async def _noop(_: Any) -> None:
    return None


def setup(world: World, env: Mapping[str, str] | None = None) -> tuple[CallTool, EchoTool, Registry]:
    echo = EchoTool()
    environment = EnvironmentCredentials(env or {})
    registry = Registry(
        plugins=[PlatformPlugin(Platform.WHATSAPP, [echo], _noop)],
        builtin=[ConnectionsStatusTool(GetConnections(world.vault), environment)],
    )
    call = CallTool(registry, world.vault, environment, world.usage, world.audit, world.clock, world.guard)
    return call, echo, registry


async def connected_customer(world: World, plan: str = "starter") -> Customer:
    customer = (await world.create("a@example.com", plan)).customer
    await ConnectPlatform(
        world.vault, world.routes, world.verifier, EnvironmentCredentials({}), world.inbound, world.mailboxes
    )(customer, Platform.WHATSAPP, whatsapp_credentials("111", "EAAG-own"), verify=False)
    return customer


async def test_customer_call_uses_its_own_decrypted_credentials_and_is_audited(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world)

    result = await call(Caller(customer), "whatsapp_send_message", {"to": "+15550001", "message": "secret body"})

    assert result == {"success": True, "message_id": "wamid.1"}
    assert echo.runs[0].credentials == whatsapp_credentials("111", "EAAG-own")
    [entry] = world.audit.entries
    assert entry.customer_id == customer.id
    assert (entry.tool, entry.platform, entry.target, entry.outcome, entry.error_code) == (
        "whatsapp_send_message",
        "whatsapp",
        "+15550001",
        "success",
        None,
    )
    assert "secret body" not in repr(entry) and "EAAG-own" not in repr(entry)
    assert await world.usage.used(customer.id, "2026-05") == 1


async def test_not_connected_asks_the_account_owner_to_connect(world: World) -> None:
    call, echo, _ = setup(world)
    customer = (await world.create("a@example.com", "starter")).customer

    with pytest.raises(NotConnected) as caught:
        await call(Caller(customer), "whatsapp_send_message", {"to": "+1"})

    assert error_text(caught.value) == (
        "WhatsApp is not connected for this account. Ask the account owner to connect WhatsApp in Hermes."
    )
    assert echo.runs == []
    assert [(e.outcome, e.error_code) for e in world.audit.entries] == [("error", "not_connected")]


async def test_single_user_mode_uses_env_credentials_under_the_pseudo_customer(world: World) -> None:
    env = {
        "WHATSAPP_DEFAULT_PHONE_NUMBER_ID": "999",
        "WHATSAPP_DEFAULT_ACCESS_TOKEN": "EAAG-env",
        "WHATSAPP_DEFAULT_BUSINESS_ACCOUNT_ID": "1",
    }
    call, echo, _ = setup(world, env)

    await call(Caller(None), "whatsapp_send_message", {"to": "+1"})

    assert echo.runs[0].credentials is not None
    assert echo.runs[0].credentials["accessToken"] == "EAAG-env"
    assert echo.runs[0].customer_id is None
    assert world.audit.entries[0].customer_id == SINGLE_USER_ID


async def test_single_user_mode_without_env_names_the_variables(world: World) -> None:
    call, _, _ = setup(world)
    with pytest.raises(NotConnected) as caught:
        await call(Caller(None), "whatsapp_send_message", {"to": "+1"})
    assert error_text(caught.value) == (
        "WhatsApp is not configured. Ask the account owner to set WHATSAPP_DEFAULT_PHONE_NUMBER_ID, "
        "WHATSAPP_DEFAULT_ACCESS_TOKEN, WHATSAPP_DEFAULT_BUSINESS_ACCOUNT_ID in Hermes's environment and restart it."
    )


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (PlatformRejected("whatsapp", "window closed", code="131047"), "131047"),
        (PlatformRejected("whatsapp", "token expired", code="190", reconnect=True), "190"),
        (RuntimeError("boom"), "internal"),
    ],
)
async def test_every_failure_leaves_exactly_one_audit_entry_with_its_code(
    world: World, failure: Exception, code: str
) -> None:
    call, echo, _ = setup(world)
    echo.fail_with = failure
    customer = await connected_customer(world)

    with pytest.raises(type(failure)):
        await call(Caller(customer), "whatsapp_send_message", {"to": "+1"})

    assert [(e.outcome, e.error_code, e.target) for e in world.audit.entries] == [("error", code, "+1")]


async def test_invalid_arguments_are_refused_before_the_platform_and_still_count(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world)
    with pytest.raises(Invalid):
        await call(Caller(customer), "whatsapp_send_message", {"message": "no recipient"})
    assert echo.runs == []
    assert await world.usage.used(customer.id, "2026-05") == 1
    assert world.audit.entries[0].error_code == "invalid_arguments"


async def test_unknown_tool_is_not_found(world: World) -> None:
    call, _, _ = setup(world)
    with pytest.raises(NotFound):
        await call(Caller(None), "myspace_post", {})


async def test_failed_calls_of_every_kind_count_against_the_monthly_quota(world: World) -> None:
    call, echo, _ = setup(world)
    customer = (await world.create("a@example.com", "free")).customer
    with pytest.raises(NotFound):
        await call(Caller(customer), "myspace_post", {})
    with pytest.raises(NotConnected):
        await call(Caller(customer), "whatsapp_send_message", {"to": "+1"})
    with pytest.raises(Invalid):
        await call(Caller(customer), "whatsapp_send_message", {})
    assert await world.usage.used(customer.id, "2026-05") == 3

    world.usage.counts[(customer.id, "2026-05")] = Plan.FREE.limits.monthly_tool_calls
    for name, arguments in (("myspace_post", {}), ("whatsapp_send_message", {})):
        with pytest.raises(RateLimited):
            await call(Caller(customer), name, arguments)
    assert echo.runs == []


async def test_monthly_quota_refuses_with_time_until_next_month(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world, "free")
    world.usage.counts[(customer.id, "2026-05")] = Plan.FREE.limits.monthly_tool_calls

    with pytest.raises(RateLimited) as caught:
        await call(Caller(customer), "whatsapp_send_message", {"to": "+1"})

    assert echo.runs == []
    # 2026-05-08 12:00 UTC -> 2026-06-01 00:00 UTC
    assert caught.value.retry_after == pytest.approx((23 * 24 + 12) * 3600)
    assert world.audit.entries[0].error_code == "rate_limited"


async def test_undecryptable_credentials_ask_for_a_reconnect(world: World) -> None:
    call, _, _ = setup(world)
    customer = await connected_customer(world)
    world.store.envelopes[(customer.id, Platform.WHATSAPP)] = b"\x01\x02k1" + b"\x00" * 40

    with pytest.raises(Conflict) as caught:
        await call(Caller(customer), "whatsapp_send_message", {"to": "+1"})
    assert caught.value.detail == "the stored WhatsApp credentials can no longer be read"
    assert caught.value.fix == "connect WhatsApp again in Hermes"
    assert [(e.outcome, e.error_code) for e in world.audit.entries] == [("error", "conflict")]


async def test_tool_list_shows_only_connected_platforms(world: World) -> None:
    _, _, registry = setup(world)
    listing = ListTools(registry, world.vault, EnvironmentCredentials({}))
    customer = (await world.create("a@example.com", "starter")).customer

    assert [s.name for s in await listing(Caller(customer))] == ["connections_status"]
    await ConnectPlatform(
        world.vault, world.routes, world.verifier, EnvironmentCredentials({}), world.inbound, world.mailboxes
    )(customer, Platform.WHATSAPP, whatsapp_credentials(), verify=False)
    names: Sequence[str] = [s.name for s in await listing(Caller(customer))]
    assert names == ["whatsapp_send_message", "connections_status"]


def test_malformed_env_credentials_stop_startup_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="WHATSAPP_DEFAULT_PHONE_NUMBER_ID"):
        EnvironmentCredentials(
            {
                "WHATSAPP_DEFAULT_PHONE_NUMBER_ID": "abc",
                "WHATSAPP_DEFAULT_ACCESS_TOKEN": "t",
                "WHATSAPP_DEFAULT_BUSINESS_ACCOUNT_ID": "1",
            }
        )


async def test_the_audit_entry_exists_before_the_platform_is_called(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world)
    seen_during_run: list[str] = []

    async def run(parsed: Any, context: ToolContext) -> dict[str, Any]:
        seen_during_run.extend(e.outcome for e in world.audit.entries)
        return {"success": True}

    echo.run = run  # type: ignore[method-assign]
    await call(Caller(customer), "whatsapp_send_message", {"to": "+1"})

    assert seen_during_run == ["started"]  # a process killed now would leave this trace
    assert [(e.outcome, e.target) for e in world.audit.entries] == [("success", "+1")]


async def test_single_user_reconnect_advice_points_at_the_environment(world: World) -> None:
    env = {
        "WHATSAPP_DEFAULT_PHONE_NUMBER_ID": "999",
        "WHATSAPP_DEFAULT_ACCESS_TOKEN": "EAAG-env",
        "WHATSAPP_DEFAULT_BUSINESS_ACCOUNT_ID": "1",
    }
    call, echo, _ = setup(world, env)
    echo.fail_with = PlatformRejected(
        "whatsapp", "WhatsApp rejected the access token (expired or revoked)", code="190", reconnect=True
    )
    with pytest.raises(PlatformRejected) as caught:
        await call(Caller(None), "whatsapp_send_message", {"to": "+1"})
    assert error_text(caught.value) == (
        "WhatsApp rejected the access token (expired or revoked). Ask the account owner to update the "
        "WHATSAPP_DEFAULT_* environment variables and restart Hermes."
    )
    assert world.audit.entries[-1].error_code == "190"


async def test_a_started_entry_reads_interrupted_once_its_call_cannot_be_running(world: World) -> None:
    from datetime import timedelta

    from hermes.application.use_cases.list_audit_log import ListAuditLog
    from hermes.domain.audit import AuditEntry

    crashed = AuditEntry("cust_a", world.clock.now(), "telegram_send_message", "telegram", "42", "started", None, 0.0)
    await world.audit.append(crashed)
    listing = ListAuditLog(world.audit, world.clock)

    fresh = (await listing("cust_a", None)).entries
    world.clock.current += timedelta(minutes=11)
    stale = (await listing("cust_a", crashed.time.date())).entries

    assert [e.outcome for e in fresh] == ["started"]  # may still be running
    assert [e.outcome for e in stale] == ["interrupted"]
