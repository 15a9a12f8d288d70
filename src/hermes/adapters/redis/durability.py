"""Can this Redis lose credentials? Checked at start-up (persistence and eviction policy)."""

from __future__ import annotations

from hermes.adapters.redis.client import RedisClient

# Policies that may evict keys without a TTL, i.e. credentials and routes.
_UNSAFE_POLICIES = {"allkeys-lru", "allkeys-lfu", "allkeys-random"}


async def durability_problems(redis: RedisClient) -> list[str]:
    """Plain-language reasons stored credentials could be lost; empty when Redis looks durable."""
    config = await redis.config_get("appendonly")
    config |= await redis.config_get("save")
    config |= await redis.config_get("maxmemory-policy")
    values = {
        str(k.decode() if isinstance(k, bytes) else k): str(v.decode() if isinstance(v, bytes) else v)
        for k, v in config.items()
    }
    problems = []
    if values.get("appendonly", "no") != "yes":
        if values.get("save", "").strip():
            problems.append(
                "Redis persists by snapshots only (appendonly no): a crash loses credentials, routes and inbound "
                "events written since the last snapshot; set appendonly yes"
            )
        else:
            problems.append(
                "Redis keeps nothing on disk (appendonly no, no save points): a restart loses every stored "
                "credential, route, audit entry and queued inbound event; set appendonly yes"
            )
    policy = values.get("maxmemory-policy", "noeviction")
    if policy in _UNSAFE_POLICIES:
        problems.append(
            f"Redis maxmemory-policy is {policy}: under memory pressure it may evict credentials and routes; "
            "use noeviction (or a volatile-* policy)"
        )
    return problems
