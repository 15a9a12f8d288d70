"""Connecting and disconnecting platforms (seed flows 2 and 5)."""

from __future__ import annotations

import pytest

from hermes.adapters.env_credentials import EnvironmentCredentials
from hermes.application.ports.routing import RouteOwner
from hermes.application.use_cases.connect_platform import ConnectPlatform
from hermes.application.use_cases.disconnect_platform import DisconnectPlatform
from hermes.application.use_cases.get_connections import GetConnections
from hermes.domain.customer import Customer
from hermes.domain.errors import Conflict, Invalid, NotFound, PlatformRejected
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT
from hermes.domain.platform import Platform
from tests.support import whatsapp_credentials
from tests.unit.conftest import World

SINGLE_USER_ENV = {
    "WHATSAPP_DEFAULT_PHONE_NUMBER_ID": "999",
    "WHATSAPP_DEFAULT_ACCESS_TOKEN": "EAAG-single",
    "WHATSAPP_DEFAULT_BUSINESS_ACCOUNT_ID": "1",
}


def connect(world: World, env: dict[str, str] | None = None) -> ConnectPlatform:
    return ConnectPlatform(
        world.vault, world.routes, world.verifier, EnvironmentCredentials(env or {}), world.inbound, world.mailboxes
    )


async def customer(world: World, email: str = "a@example.com") -> Customer:
    return (await world.create(email, "starter")).customer


async def test_connecting_whatsapp_stores_encrypted_credentials_and_routes_the_number(world: World) -> None:
    cust = await customer(world)

    await connect(world)(cust, Platform.WHATSAPP, whatsapp_credentials("111"), verify=False)

    envelope = world.store.envelopes[(cust.id, Platform.WHATSAPP, DEFAULT_ACCOUNT)]
    assert b"EAAG-test-token" not in envelope
    assert await world.vault.load(cust.id, Platform.WHATSAPP) == whatsapp_credentials("111")
    assert await world.routes.owner("wa_phone_id:111") == RouteOwner(cust.id)
    status = await GetConnections(world.vault)(cust.id)
    assert status[Platform.WHATSAPP] is True
    assert [p for p, v in status.items() if v] == [Platform.WHATSAPP]
    assert set(status) == set(Platform)


async def test_a_number_owned_by_another_customer_is_a_conflict_and_nothing_changes(world: World) -> None:
    alice, mallory = await customer(world, "alice@example.com"), await customer(world, "mallory@example.com")
    await connect(world)(alice, Platform.WHATSAPP, whatsapp_credentials("111"), verify=False)

    with pytest.raises(Conflict):
        await connect(world)(mallory, Platform.WHATSAPP, whatsapp_credentials("111", "EAAG-other"), verify=False)

    assert await world.routes.owner("wa_phone_id:111") == RouteOwner(alice.id)
    assert (mallory.id, Platform.WHATSAPP) not in world.store.envelopes


async def test_reconnecting_with_a_new_number_moves_the_route(world: World) -> None:
    cust = await customer(world)
    await connect(world)(cust, Platform.WHATSAPP, whatsapp_credentials("111"), verify=False)
    await connect(world)(cust, Platform.WHATSAPP, whatsapp_credentials("222"), verify=False)

    assert await world.routes.owner("wa_phone_id:111") is None
    assert await world.routes.owner("wa_phone_id:222") == RouteOwner(cust.id)


async def test_reconnecting_the_same_number_keeps_the_route(world: World) -> None:
    cust = await customer(world)
    await connect(world)(cust, Platform.WHATSAPP, whatsapp_credentials("111"), verify=False)
    await connect(world)(cust, Platform.WHATSAPP, whatsapp_credentials("111", "EAAG-new"), verify=False)

    assert await world.routes.owner("wa_phone_id:111") == RouteOwner(cust.id)
    assert (await world.vault.load(cust.id, Platform.WHATSAPP) or {})["accessToken"] == "EAAG-new"


async def test_disconnect_removes_credentials_and_route(world: World) -> None:
    cust = await customer(world)
    await connect(world)(cust, Platform.WHATSAPP, whatsapp_credentials("111"), verify=False)

    await DisconnectPlatform(world.vault, world.routes, world.inbound, world.mailboxes)(cust, Platform.WHATSAPP)
    await DisconnectPlatform(world.vault, world.routes, world.inbound, world.mailboxes)(
        cust, Platform.WHATSAPP
    )  # idempotent

    assert await world.routes.owner("wa_phone_id:111") is None
    assert (await GetConnections(world.vault)(cust.id))[Platform.WHATSAPP] is False


async def test_invalid_credentials_name_every_bad_field_and_store_nothing(world: World) -> None:
    cust = await customer(world)
    with pytest.raises(Invalid) as caught:
        await connect(world)(
            cust, Platform.WHATSAPP, {"phoneNumberId": "12ab", "accessToken": "", "bogus": 1}, verify=False
        )
    assert set(caught.value.fields) == {"phoneNumberId", "accessToken", "businessAccountId", "bogus"}
    assert world.store.envelopes == {} and world.routes.owners == {}


async def test_verify_refusal_stores_nothing(world: World) -> None:
    cust = await customer(world)
    world.verifier.refuse.add(Platform.WHATSAPP)
    with pytest.raises(PlatformRejected):
        await connect(world)(cust, Platform.WHATSAPP, whatsapp_credentials("111"), verify=True)
    assert world.store.envelopes == {} and world.routes.owners == {}


async def test_verify_is_called_only_when_asked(world: World) -> None:
    cust = await customer(world)
    await connect(world)(cust, Platform.TELEGRAM, {"botToken": "123456:" + "A" * 35}, verify=False)
    assert world.verifier.calls == []
    await connect(world)(cust, Platform.TELEGRAM, {"botToken": "123456:" + "A" * 35}, verify=True)
    assert [p for p, _ in world.verifier.calls] == [Platform.TELEGRAM]


async def test_whatsapp_is_verified_even_when_verify_is_off(world: World) -> None:
    cust = await customer(world)
    world.verifier.refuse.add(Platform.WHATSAPP)
    with pytest.raises(PlatformRejected):
        await connect(world)(cust, Platform.WHATSAPP, whatsapp_credentials("111", "EAAG-not-for-111"), verify=False)
    assert [p for p, _ in world.verifier.calls] == [Platform.WHATSAPP]
    assert world.store.envelopes == {} and world.routes.owners == {}


async def test_the_single_user_number_cannot_be_claimed_by_a_customer(world: World) -> None:
    cust = await customer(world)
    with pytest.raises(Conflict) as caught:
        await connect(world, SINGLE_USER_ENV)(cust, Platform.WHATSAPP, whatsapp_credentials("999"), verify=False)
    assert caught.value.detail == "WhatsApp phone number id 999 is reserved by this deployment"
    assert world.store.envelopes == {} and world.routes.owners == {}
    await connect(world, SINGLE_USER_ENV)(cust, Platform.WHATSAPP, whatsapp_credentials("111"), verify=False)
    assert await world.routes.owner("wa_phone_id:111") == RouteOwner(cust.id)


async def test_unreadable_whatsapp_credentials_can_be_replaced_by_reconnecting(world: World) -> None:
    cust = await customer(world)
    await connect(world)(cust, Platform.WHATSAPP, whatsapp_credentials("111"), verify=False)
    world.store.envelopes[(cust.id, Platform.WHATSAPP, DEFAULT_ACCOUNT)] = b"\x01\x02k1" + b"\x00" * 40

    await connect(world)(cust, Platform.WHATSAPP, whatsapp_credentials("111", "EAAG-again"), verify=False)

    assert (await world.vault.load(cust.id, Platform.WHATSAPP) or {})["accessToken"] == "EAAG-again"
    assert await world.routes.owner("wa_phone_id:111") == RouteOwner(cust.id)


def test_unknown_platform_is_not_found() -> None:
    with pytest.raises(NotFound):
        Platform.parse("myspace")
