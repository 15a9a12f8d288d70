"""One contract test suite per port, run against the in-memory adapter (unit) and the real ones (integration).

Each class expects fixtures named after the port (`credential_store`, `directory`, ...)
from the module that subclasses it.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, date, datetime

import pytest

from hermes.application.ports.audit import AuditLog
from hermes.application.ports.credentials import CredentialStore
from hermes.application.ports.customers import CustomerCache, CustomerDirectory
from hermes.application.ports.metering import RateLimiter, UsageMeter
from hermes.application.ports.routing import AccountRoutes, RouteOwner
from hermes.domain.audit import AuditEntry
from hermes.domain.customer import ApiKey, Customer, new_customer_id
from hermes.domain.errors import Conflict
from hermes.domain.plan import Plan
from hermes.domain.platform import Platform, all_platforms


def a_customer(**changes: object) -> tuple[Customer, ApiKey]:
    key = ApiKey.generate()
    values: dict[str, object] = {
        "id": new_customer_id(),
        "email": f"{secrets.token_hex(3)}@example.com",
        "plan": Plan.PRO,
        "active": True,
        "created_at": datetime(2026, 5, 8, 9, 30, 15, 123456, tzinfo=UTC),
        "api_key_prefix": key.prefix,
    }
    values.update(changes)
    return Customer(**values), key  # type: ignore[arg-type]


def uid() -> str:
    return "cust_" + secrets.token_hex(6)


class CredentialStoreContract:
    async def test_put_get_delete(self, credential_store: CredentialStore) -> None:
        cust = uid()
        assert await credential_store.get(cust, Platform.WHATSAPP) is None
        await credential_store.put(cust, Platform.WHATSAPP, b"\x00envelope\xff")
        assert await credential_store.get(cust, Platform.WHATSAPP) == b"\x00envelope\xff"
        await credential_store.put(cust, Platform.WHATSAPP, b"second")
        assert await credential_store.get(cust, Platform.WHATSAPP) == b"second"
        assert await credential_store.delete(cust, Platform.WHATSAPP) is True
        assert await credential_store.delete(cust, Platform.WHATSAPP) is False
        assert await credential_store.get(cust, Platform.WHATSAPP) is None

    async def test_present_answers_per_platform_and_per_customer(self, credential_store: CredentialStore) -> None:
        a, b = uid(), uid()
        await credential_store.put(a, Platform.TELEGRAM, b"x")
        await credential_store.put(a, Platform.OBSIDIAN, b"y")
        await credential_store.put(b, Platform.EMAIL, b"z")
        present = await credential_store.present(a, all_platforms())
        assert dict(zip(all_platforms(), present, strict=True)) == {
            p: p in (Platform.TELEGRAM, Platform.OBSIDIAN) for p in all_platforms()
        }

    async def test_replace_if_unchanged(self, credential_store: CredentialStore) -> None:
        cust = uid()
        await credential_store.put(cust, Platform.DISCORD, b"old")
        assert await credential_store.replace_if_unchanged(cust, Platform.DISCORD, b"old", b"new") is True
        assert await credential_store.replace_if_unchanged(cust, Platform.DISCORD, b"old", b"newer") is False
        assert await credential_store.get(cust, Platform.DISCORD) == b"new"

    async def test_replace_if_unchanged_never_brings_back_a_deleted_envelope(
        self, credential_store: CredentialStore
    ) -> None:
        cust = uid()
        await credential_store.put(cust, Platform.TWITTER, b"old")
        await credential_store.delete(cust, Platform.TWITTER)
        assert await credential_store.replace_if_unchanged(cust, Platform.TWITTER, b"old", b"renewed") is False
        assert await credential_store.get(cust, Platform.TWITTER) is None

    async def test_scan_yields_every_envelope(self, credential_store: CredentialStore) -> None:
        a, b = uid(), uid()
        await credential_store.put(a, Platform.TWITTER, b"1")
        await credential_store.put(b, Platform.LINKEDIN, b"2")
        await credential_store.put(b, Platform.LINKEDIN, b"3", "work")
        seen = {(c, p, n): e async for c, p, n, e in credential_store.scan()}
        assert seen[(a, Platform.TWITTER, "default")] == b"1"
        assert seen[(b, Platform.LINKEDIN, "default")] == b"2"
        assert seen[(b, Platform.LINKEDIN, "work")] == b"3"

    async def test_pages_walk_every_account_and_resume_from_any_position(
        self, credential_store: CredentialStore
    ) -> None:
        a, b = uid(), uid()
        ours = {(a, p, "default") for p in (Platform.TELEGRAM, Platform.EMAIL, Platform.DISCORD)}
        ours |= {(b, Platform.WHATSAPP, n) for n in ("default", "shop", "home")}
        for customer_id, platform, account in ours:
            await credential_store.put(customer_id, platform, b"e", account)
        steps: list[tuple[str, list[tuple[str, Platform, str]]]] = []  # (where a step started, what it listed)
        position: str | None = ""
        while position is not None:
            page = await credential_store.page(position, 2)
            steps.append((position, page.accounts))
            position = page.next
        assert ours <= {listed for _, accounts in steps for listed in accounts}
        # Taken up half-way (as another process would, from the recorded position), the walk still ends with all.
        half = len(steps) // 2
        position = steps[half][0]
        rest: set[tuple[str, Platform, str]] = set()
        while position is not None:
            page = await credential_store.page(position, 2)
            rest |= set(page.accounts)
            position = page.next
        assert ours <= {listed for _, accounts in steps[:half] for listed in accounts} | rest

    async def test_accounts_are_separate_and_the_default_keeps_its_place(
        self, credential_store: CredentialStore
    ) -> None:
        cust = uid()
        await credential_store.put(cust, Platform.WHATSAPP, b"personal")
        await credential_store.put(cust, Platform.WHATSAPP, b"shop", "shop")
        await credential_store.put(cust, Platform.EMAIL, b"work", "work")
        assert await credential_store.get(cust, Platform.WHATSAPP) == b"personal"
        assert await credential_store.get(cust, Platform.WHATSAPP, "default") == b"personal"
        assert await credential_store.get(cust, Platform.WHATSAPP, "shop") == b"shop"
        assert await credential_store.accounts(cust) == [
            (Platform.EMAIL, "work"),
            (Platform.WHATSAPP, "default"),
            (Platform.WHATSAPP, "shop"),
        ]
        # A platform whose only account is not the default one still counts as connected.
        present = dict(zip(all_platforms(), await credential_store.present(cust, all_platforms()), strict=True))
        assert present[Platform.EMAIL] is True
        assert await credential_store.replace_if_unchanged(cust, Platform.WHATSAPP, b"shop", b"shop2", "shop")
        assert await credential_store.get(cust, Platform.WHATSAPP) == b"personal"
        assert await credential_store.delete(cust, Platform.WHATSAPP, "shop") is True
        assert await credential_store.get(cust, Platform.WHATSAPP, "shop") is None
        assert await credential_store.get(cust, Platform.WHATSAPP) == b"personal"
        assert await credential_store.accounts(cust) == [(Platform.EMAIL, "work"), (Platform.WHATSAPP, "default")]


class CustomerDirectoryContract:
    async def test_add_get_find(self, directory: CustomerDirectory) -> None:
        customer, key = a_customer()
        await directory.add(customer, key.digest)
        assert await directory.get(customer.id) == customer
        found = await directory.find_by_key_digest(key.digest)
        assert found == (customer, key.digest)
        assert await directory.find_by_key_digest(ApiKey.generate().digest) is None
        assert await directory.get("cust_missing") is None
        assert await directory.key_digest(customer.id) == key.digest

    async def test_duplicate_key_digest_is_a_conflict(self, directory: CustomerDirectory) -> None:
        first, key = a_customer()
        await directory.add(first, key.digest)
        second, _ = a_customer()
        with pytest.raises(Conflict):
            await directory.add(second, key.digest)

    async def test_one_customer_per_email_whatever_its_case(self, directory: CustomerDirectory) -> None:
        first, key = a_customer()
        await directory.add(first, key.digest)
        second, other_key = a_customer(email=first.email.upper())
        with pytest.raises(Conflict, match="email"):
            await directory.add(second, other_key.digest)
        assert await directory.get(second.id) is None

    async def test_set_active_and_replace_key(self, directory: CustomerDirectory) -> None:
        customer, key = a_customer()
        await directory.add(customer, key.digest)
        updated = await directory.set_active(customer.id, False)
        assert updated is not None and updated.active is False
        new = ApiKey.generate()
        assert await directory.replace_key(customer.id, new.digest, new.prefix) == key.digest
        assert await directory.find_by_key_digest(key.digest) is None
        found = await directory.find_by_key_digest(new.digest)
        assert found is not None and found[0].api_key_prefix == new.prefix
        assert await directory.set_active("cust_missing", True) is None
        assert await directory.replace_key("cust_missing", new.digest, new.prefix) is None

    async def test_list_is_ordered_and_paged(self, directory: CustomerDirectory) -> None:
        added = []
        for _ in range(3):
            customer, key = a_customer()
            await directory.add(customer, key.digest)
            added.append(customer.id)
        listed = [c.id for c in await directory.list(limit=1000)]
        assert [i for i in listed if i in added] == sorted(added)
        after = sorted(added)[0]
        assert all(c.id > after for c in await directory.list(limit=1000, after=after))


class CustomerCacheContract:
    async def test_put_get_evict(self, customer_cache: CustomerCache) -> None:
        customer, key = a_customer()
        assert await customer_cache.get(key.digest) is None
        assert await customer_cache.put(key.digest, customer, await customer_cache.generation(key.digest))
        assert await customer_cache.get(key.digest) == customer
        await customer_cache.evict(key.digest)
        assert await customer_cache.get(key.digest) is None

    async def test_a_lookup_that_started_before_an_eviction_is_not_written_back(
        self, customer_cache: CustomerCache
    ) -> None:
        customer, key = a_customer()
        generation = await customer_cache.generation(key.digest)  # a lookup reads the directory now ...
        await customer_cache.evict(key.digest)  # ... the customer is deactivated meanwhile ...
        assert not await customer_cache.put(key.digest, customer, generation)  # ... and its answer is dropped
        assert await customer_cache.get(key.digest) is None

        fresh = await customer_cache.generation(key.digest)  # a lookup that starts after the eviction
        assert await customer_cache.put(key.digest, customer, fresh)
        assert await customer_cache.get(key.digest) == customer


class AccountRoutesContract:
    async def test_claim_is_first_come_and_release_only_by_owner(self, phone_routes: AccountRoutes) -> None:
        number = str(secrets.randbelow(10**12))
        a, b = RouteOwner(uid()), RouteOwner(uid())
        assert await phone_routes.claim(number, a) == a
        assert await phone_routes.claim(number, b) == a
        assert await phone_routes.claim(number, a) == a
        await phone_routes.release(number, b)
        assert await phone_routes.owner(number) == a
        await phone_routes.release(number, a)
        assert await phone_routes.owner(number) is None

    async def test_a_route_names_the_customers_account(self, phone_routes: AccountRoutes) -> None:
        number = str(secrets.randbelow(10**12))
        work = RouteOwner(uid(), "work")
        assert await phone_routes.claim(number, work) == work
        assert await phone_routes.owner(number) == work
        # The same customer under another account name does not hold it, and cannot release it.
        default = RouteOwner(work.customer_id)
        assert await phone_routes.claim(number, default) == work
        await phone_routes.release(number, default)
        assert await phone_routes.owner(number) == work
        await phone_routes.release(number, work)
        assert await phone_routes.owner(number) is None

    async def test_concurrent_claims_have_one_winner(self, phone_routes: AccountRoutes) -> None:
        number = str(secrets.randbelow(10**12))
        contenders = [RouteOwner(uid(), name) for name in ("default", "work") for _ in range(5)]
        owners = await asyncio.gather(*(phone_routes.claim(number, c) for c in contenders))
        assert len(set(owners)) == 1 and owners[0] in contenders


class UsageMeterContract:
    async def test_consume_counts_up_to_the_limit(self, usage_meter: UsageMeter) -> None:
        cust = uid()
        assert [await usage_meter.consume(cust, "2026-05", 3) for _ in range(4)] == [1, 2, 3, None]
        assert await usage_meter.used(cust, "2026-05") == 3
        assert await usage_meter.used(cust, "2026-06") == 0

    async def test_concurrent_consumers_never_exceed_the_limit(self, usage_meter: UsageMeter) -> None:
        cust = uid()
        results = await asyncio.gather(*(usage_meter.consume(cust, "2026-05", 5) for _ in range(12)))
        assert sorted(r for r in results if r is not None) == [1, 2, 3, 4, 5]
        assert await usage_meter.used(cust, "2026-05") == 5


class RateLimiterContract:
    async def test_limit_then_wait(self, rate_limiter: RateLimiter) -> None:
        cust = uid()
        assert [await rate_limiter.hit(cust, 3) for _ in range(3)] == [None, None, None]
        wait = await rate_limiter.hit(cust, 3)
        assert wait is not None and 0 < wait <= 60
        assert await rate_limiter.hit(uid(), 3) is None  # another customer is unaffected


class AuditLogContract:
    async def test_append_and_list_one_customer_one_day_in_order(self, audit_log: AuditLog) -> None:
        a, b = uid(), uid()
        day = datetime(2026, 5, 8, 10, tzinfo=UTC)
        for i, tool in enumerate(["whatsapp_send_message", "telegram_send_message", "email_send"]):
            await audit_log.append(
                AuditEntry(a, day.replace(minute=i), tool, tool.split("_")[0], f"t{i}", "success", None, 1.5)
            )
        await audit_log.append(AuditEntry(b, day, "x_tool", None, None, "error", "invalid_arguments", 0.1))
        await audit_log.append(AuditEntry(a, day.replace(day=9), "late", None, None, "success", None, 0.1))

        entries, after = await audit_log.list(a, date(2026, 5, 8))
        assert after is None
        assert [e.tool for e in entries] == ["whatsapp_send_message", "telegram_send_message", "email_send"]
        assert entries[0] == AuditEntry(
            a, day.replace(minute=0), "whatsapp_send_message", "whatsapp", "t0", "success", None, 1.5
        )
        assert [e.error_code for e in (await audit_log.list(b, date(2026, 5, 8)))[0]] == ["invalid_arguments"]
        assert await audit_log.list(a, date(2026, 5, 7)) == ([], None)

    async def test_a_started_entry_is_completed_in_place(self, audit_log: AuditLog) -> None:
        cust = uid()
        when = datetime(2026, 5, 8, 11, tzinfo=UTC)
        started = AuditEntry(cust, when, "telegram_send_message", "telegram", "42", "started", None, 0.0)
        entry_id = await audit_log.append(started)
        await audit_log.append(AuditEntry(cust, when, "later_call", None, None, "success", None, 1.0))
        assert [e.outcome for e in (await audit_log.list(cust, date(2026, 5, 8)))[0]] == ["started", "success"]

        done = AuditEntry(cust, when, "telegram_send_message", "telegram", "42", "error", "429", 812.5)
        await audit_log.complete(entry_id, done)

        assert (await audit_log.list(cust, date(2026, 5, 8)))[0] == [
            done,
            AuditEntry(cust, when, "later_call", None, None, "success", None, 1.0),
        ]

    async def test_pages_cover_every_entry_once_in_order_and_end_with_no_cursor(self, audit_log: AuditLog) -> None:
        cust, other = uid(), uid()
        when = datetime(2026, 5, 8, 9, tzinfo=UTC)
        for i in range(7):
            await audit_log.append(AuditEntry(cust, when, f"tool_{i}", None, None, "success", None, 1.0))
            await audit_log.append(AuditEntry(other, when, "noise", None, None, "success", None, 1.0))

        seen: list[str] = []
        after = 0
        for _ in range(10):
            page, following = await audit_log.list(cust, date(2026, 5, 8), after, 3)
            seen += [e.tool for e in page]
            if following is None:
                break
            after = following
        assert seen == [f"tool_{i}" for i in range(7)]
        assert (await audit_log.list(cust, date(2026, 5, 8), 0, 7))[1] is None  # exactly one full page

        # A cursor stays valid as the day grows: the next page starts with what came after it.
        await audit_log.append(AuditEntry(cust, when, "tool_7", None, None, "success", None, 1.0))
        page, following = await audit_log.list(cust, date(2026, 5, 8), after, 3)
        assert [e.tool for e in page] == ["tool_6", "tool_7"] and following is None
