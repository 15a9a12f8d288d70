"""Routes are stored as DESIGN section 5 spells them (`wa_phone_id:111` -> the bare customer id for the
default account); routes an earlier version stored under the braced name move over, once, whether on
start-up or through `hermes db upgrade`."""

from __future__ import annotations

import secrets
from typing import Any

from hermes.adapters.redis.account_routes import RedisAccountRoutes
from hermes.adapters.redis.client import connect
from hermes.application.ports.routing import RouteOwner


async def test_the_default_account_route_is_the_bare_customer_id_and_others_name_their_account(
    redis_url: str, aio_redis: Any
) -> None:
    seed_number, work_number = (str(secrets.randbelow(10**12) + 10**12) for _ in range(2))
    await aio_redis.set(f"wa_phone_id:{seed_number}", "cust_seed")  # as the seed's system writes it
    redis = connect(redis_url)
    try:
        routes = RedisAccountRoutes(redis)
        assert await routes.owner(f"wa_phone_id:{seed_number}") == RouteOwner("cust_seed", "default")
        assert await routes.claim(f"wa_phone_id:{work_number}", RouteOwner("cust_seed", "work")) == RouteOwner(
            "cust_seed", "work"
        )
        assert await aio_redis.get(f"wa_phone_id:{work_number}") == b"cust_seed/work"
        await routes.release(f"wa_phone_id:{seed_number}", RouteOwner("cust_seed"))
        assert await aio_redis.get(f"wa_phone_id:{seed_number}") is None
        assert await routes.claim(f"wa_phone_id:{seed_number}", RouteOwner("cust_seed")) == RouteOwner("cust_seed")
        assert await aio_redis.get(f"wa_phone_id:{seed_number}") == b"cust_seed"
    finally:
        await redis.aclose()
        await aio_redis.delete(f"wa_phone_id:{seed_number}", f"wa_phone_id:{work_number}")


async def test_braced_routes_move_to_the_seed_spelling_idempotently(redis_url: str, aio_redis: Any) -> None:
    moved_number, contested_number = (str(secrets.randbelow(10**12) + 10**12) for _ in range(2))
    await aio_redis.set(f"wa_phone_id:{{{moved_number}}}", "cust_old")
    await aio_redis.set(f"wa_phone_id:{{{contested_number}}}", "cust_old")
    await aio_redis.set(f"wa_phone_id:{contested_number}", "cust_seed")  # written by the seed's system: it wins
    redis = connect(redis_url)
    try:
        routes = RedisAccountRoutes(redis)
        assert await routes.unbrace() >= 1
        assert await routes.owner(f"wa_phone_id:{moved_number}") == RouteOwner("cust_old")
        assert await aio_redis.get(f"wa_phone_id:{{{moved_number}}}") is None
        assert await routes.owner(f"wa_phone_id:{contested_number}") == RouteOwner("cust_seed")
        assert await aio_redis.get(f"wa_phone_id:{{{contested_number}}}") in (b"cust_old", "cust_old")
        await routes.unbrace()  # again: nothing changes
        assert await routes.owner(f"wa_phone_id:{moved_number}") == RouteOwner("cust_old")
    finally:
        await redis.aclose()
        await aio_redis.delete(
            f"wa_phone_id:{moved_number}", f"wa_phone_id:{contested_number}", f"wa_phone_id:{{{contested_number}}}"
        )
