"""Creating customers, resolving their keys (the seed's meterMiddleware), deactivation and key rotation."""

from __future__ import annotations

import pytest

from hermes.adapters.memory.stores import InMemoryRateLimiter
from hermes.application.use_cases.deactivate_customer import DeactivateCustomer
from hermes.application.use_cases.get_customer import GetCustomer, ListCustomers
from hermes.application.use_cases.resolve_customer import ResolveCustomer
from hermes.application.use_cases.rotate_api_key import RotateApiKey
from hermes.domain.customer import API_KEY_PREFIX, digest_api_key
from hermes.domain.errors import Invalid, NotFound, RateLimited, Unauthorized
from hermes.domain.plan import Plan
from tests.unit.conftest import World


async def test_create_issues_a_long_prefixed_key_stored_only_as_its_digest(world: World) -> None:
    made = await world.create("Owner@Example.com", "starter")

    assert made.api_key.startswith(API_KEY_PREFIX)
    assert len(made.api_key) - len(API_KEY_PREFIX) >= 40  # >= 160 bits of base64url
    assert made.customer.email == "owner@example.com"
    assert made.customer.plan is Plan.STARTER and made.customer.active
    stored = world.directory.digests[made.customer.id]
    assert stored == digest_api_key(made.api_key) and made.api_key not in stored


async def test_keys_are_unique(world: World) -> None:
    keys = {(await world.create(f"u{i}@example.com", "free")).api_key for i in range(50)}
    assert len(keys) == 50


@pytest.mark.parametrize(
    ("email", "plan", "field"),
    [("not-an-email", "free", "email"), ("a@b.co", "platinum", "plan"), (None, "free", "email"), ("a@b.co", 3, "plan")],
)
async def test_create_refuses_bad_input_naming_the_field(world: World, email: object, plan: object, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        await world.create(email, plan)
    assert field in caught.value.fields
    assert world.directory.customers == {}


async def test_resolve_hits_the_directory_once_then_the_cache(world: World) -> None:
    made = await world.create("a@example.com", "free")

    first = await world.resolve(made.api_key)
    second = await world.resolve(made.api_key)

    assert first.id == second.id == made.customer.id
    assert world.directory.lookups == 1


@pytest.mark.parametrize(
    "key", [None, "", "garbage", API_KEY_PREFIX + "x" * 43, API_KEY_PREFIX + "y" * 500, "Bearer " + API_KEY_PREFIX]
)
async def test_unknown_and_malformed_keys_are_refused_alike(world: World, key: str | None) -> None:
    await world.create("a@example.com", "free")
    with pytest.raises(Unauthorized) as caught:
        await world.resolve(key)
    assert caught.value.detail == Unauthorized().detail


async def test_deactivated_customer_is_refused_on_the_next_request(world: World) -> None:
    made = await world.create("a@example.com", "free")
    await world.resolve(made.api_key)  # now cached

    await DeactivateCustomer(world.directory, world.cache, world.sessions)(made.customer.id)

    with pytest.raises(Unauthorized) as caught:
        await world.resolve(made.api_key)
    assert caught.value.detail == Unauthorized().detail
    assert world.sessions.revoked == [made.customer.id]


async def test_rotated_key_replaces_the_old_one_at_once(world: World) -> None:
    made = await world.create("a@example.com", "free")
    await world.resolve(made.api_key)

    new_key = await RotateApiKey(world.directory, world.cache, world.sessions)(made.customer.id)

    with pytest.raises(Unauthorized):
        await world.resolve(made.api_key)
    assert (await world.resolve(new_key)).id == made.customer.id
    assert new_key != made.api_key
    assert world.sessions.revoked == [made.customer.id]


async def test_operator_actions_on_unknown_customers_are_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await DeactivateCustomer(world.directory, world.cache, world.sessions)("cust_nope")
    with pytest.raises(NotFound):
        await RotateApiKey(world.directory, world.cache, world.sessions)("cust_nope")
    with pytest.raises(NotFound):
        await GetCustomer(world.directory)("cust_nope")


async def test_list_customers_pages_by_id(world: World) -> None:
    ids = sorted([(await world.create(f"u{i}@example.com", "free")).customer.id for i in range(5)])
    listing = ListCustomers(world.directory)
    first = await listing(limit=2)
    rest = await listing(limit=10, after=first[-1].id)
    assert [c.id for c in first + rest] == ids
    with pytest.raises(Invalid):
        await listing(limit=0)


async def test_requests_over_the_plan_minute_limit_are_refused_with_a_wait(world: World) -> None:
    made = await world.create("a@example.com", "free")
    resolve = ResolveCustomer(world.directory, world.cache, InMemoryRateLimiter())
    for _ in range(Plan.FREE.limits.requests_per_minute):
        await resolve(made.api_key)

    with pytest.raises(RateLimited) as caught:
        await resolve(made.api_key)
    assert 0 < caught.value.retry_after <= 60
