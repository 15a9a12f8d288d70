"""Console sessions and form checks: sign-in, expiry, key rotation, sign-out, CSRF and Origin rules."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, Request
from litestar.testing import AsyncTestClient

from hermes.adapters.memory.console_sessions import InMemoryConsoleSessionStore
from hermes.adapters.sql.migrate import upgrade_url
from hermes.application.ports.console import ConsoleSessionStore
from hermes.application.use_cases.deactivate_customer import DeactivateCustomer
from hermes.application.use_cases.find_console_session import FindConsoleSession
from hermes.application.use_cases.rotate_api_key import RotateApiKey
from hermes.application.use_cases.sign_in_to_console import SignInToConsole
from hermes.application.use_cases.sign_out_of_console import SignOutOfConsole
from hermes.domain.console import ConsolePolicy, csrf_token, new_session_id, public_origin, same_token, session_digest
from hermes.domain.customer import Customer
from hermes.domain.errors import RateLimited, Unauthorized
from hermes.domain.plan import Plan
from hermes.domain.platform import Platform
from hermes.entrypoints.http.app import make_app
from hermes.entrypoints.http.console import CONSOLE, SIGN_IN, STYLE_SHEET, field_label, same_origin
from tests.contracts.console import ConsoleSessionStoreContract
from tests.support import ADMIN_TOKEN, make_settings
from tests.unit.conftest import World


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestInMemoryConsoleSessionStore(ConsoleSessionStoreContract):
    @pytest.fixture
    def console_sessions(self) -> InMemoryConsoleSessionStore:
        self.monotonic = FakeMonotonic()
        return InMemoryConsoleSessionStore(clock=self.monotonic)

    async def wait(self, console_sessions: ConsoleSessionStore, seconds: float) -> None:
        self.monotonic.now += seconds


async def test_the_memory_store_stays_bounded() -> None:
    monotonic = FakeMonotonic()
    store = InMemoryConsoleSessionStore(max_sessions=3, clock=monotonic)
    from tests.contracts.console import a_session

    opened = [a_session() for _ in range(5)]
    for i, (digest, session) in enumerate(opened):
        monotonic.now += 1
        await store.open(digest, session, 60 + i)
    alive = [await store.touch(digest, 60) for digest, _ in opened]
    assert [s is not None for s in alive] == [False, False, True, True, True]


async def _customer(world: World, email: str, plan: Plan) -> tuple[Customer, str]:
    made = await world.create(email, plan.value)
    return made.customer, made.api_key


class Console:
    """The console's use cases over one world, with a policy of 30 min idle, 12 h at most, 3 sign-ins a minute."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.monotonic = FakeMonotonic()
        self.store = InMemoryConsoleSessionStore(clock=self.monotonic)
        self.policy = ConsolePolicy(idle_ttl=1800, max_age=12 * 3600, sign_ins_per_minute=3)
        self.sign_in = SignInToConsole(world.resolve, self.store, world.limiter, self.policy, world.clock)
        self.find = FindConsoleSession(self.store, world.resolve, self.policy, world.clock)
        self.sign_out = SignOutOfConsole(self.store)

    def wait(self, seconds: float) -> None:
        self.monotonic.now += seconds
        self.world.clock.current += timedelta(seconds=seconds)


@pytest.fixture
def console(world: World) -> Console:
    return Console(world)


async def test_a_key_opens_a_session_that_finds_its_customer(world: World, console: Console) -> None:
    customer, key = await _customer(world, "owner@example.com", Plan.PRO)
    session_id, signed_in = await console.sign_in(f"  {key}\n", "192.0.2.1")
    assert signed_in.id == customer.id
    assert (await console.find(session_id)).id == customer.id
    # Only the digest of the id is kept; the id itself opens nothing in the store.
    assert await console.store.touch(session_id, 60) is None
    assert await console.store.touch(session_digest(session_id), 60) is not None


async def test_wrong_keys_open_nothing(world: World, console: Console) -> None:
    _, key = await _customer(world, "owner@example.com", Plan.PRO)
    for wrong in (None, "", "hms_nope", key + "x"):
        with pytest.raises(Unauthorized):
            await console.sign_in(wrong, f"192.0.2.{len(wrong or '')}")
    assert console.store._sessions == {}


@pytest.mark.parametrize("session_id", [None, "", "short", new_session_id(), "x" * 43])
async def test_unknown_session_ids_are_refused(console: Console, session_id: str | None) -> None:
    with pytest.raises(Unauthorized):
        await console.find(session_id)


async def test_a_session_ends_after_30_idle_minutes_but_not_while_used(world: World, console: Console) -> None:
    _, key = await _customer(world, "owner@example.com", Plan.PRO)
    busy, _ = await console.sign_in(key, "192.0.2.1")
    idle, _ = await console.sign_in(key, "192.0.2.1")
    for _ in range(4):
        console.wait(25 * 60)
        await console.find(busy)
    with pytest.raises(Unauthorized):
        await console.find(idle)


async def test_a_session_ends_12_hours_after_sign_in_however_busy(world: World, console: Console) -> None:
    _, key = await _customer(world, "owner@example.com", Plan.PRO)
    session_id, _ = await console.sign_in(key, "192.0.2.1")
    for _ in range(12 * 60 // 20 - 1):
        console.wait(20 * 60)
        await console.find(session_id)
    console.wait(20 * 60)
    with pytest.raises(Unauthorized):
        await console.find(session_id)
    assert console.store._sessions == {}


async def test_rotating_the_key_or_deactivating_ends_the_session(world: World, console: Console) -> None:
    first, key = await _customer(world, "one@example.com", Plan.PRO)
    second, key2 = await _customer(world, "two@example.com", Plan.PRO)
    rotated, _ = await console.sign_in(key, "192.0.2.1")
    deactivated, _ = await console.sign_in(key2, "192.0.2.2")

    await RotateApiKey(world.directory, world.cache, world.sessions)(first.id)
    with pytest.raises(Unauthorized):
        await console.find(rotated)
    await DeactivateCustomer(world.directory, world.cache, world.sessions)(second.id)
    with pytest.raises(Unauthorized):
        await console.find(deactivated)


async def test_sign_out_ends_only_that_session(world: World, console: Console) -> None:
    _, key = await _customer(world, "owner@example.com", Plan.PRO)
    laptop, _ = await console.sign_in(key, "192.0.2.1")
    phone, _ = await console.sign_in(key, "192.0.2.1")
    await console.sign_out(laptop)
    await console.sign_out(laptop)  # twice is fine
    await console.sign_out(None)
    with pytest.raises(Unauthorized):
        await console.find(laptop)
    await console.find(phone)


async def test_sign_in_attempts_are_limited_per_address(world: World, console: Console) -> None:
    _, key = await _customer(world, "owner@example.com", Plan.PRO)
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await console.sign_in("hms_guess", "198.51.100.7")
    with pytest.raises(RateLimited) as refused:
        await console.sign_in(key, "198.51.100.7")  # even the right key, once over
    assert 0 < refused.value.retry_after <= 60
    await console.sign_in(key, "198.51.100.8")  # another address is unaffected


async def test_console_pages_count_against_the_plan_rate_limit(world: World, console: Console) -> None:
    _, key = await _customer(world, "owner@example.com", Plan.FREE)
    session_id, _ = await console.sign_in(key, "192.0.2.1")
    for _ in range(Plan.FREE.limits.requests_per_minute):
        await console.find(session_id)
    with pytest.raises(RateLimited):
        await console.find(session_id)


def test_csrf_tokens_belong_to_one_session() -> None:
    a, b = new_session_id(), new_session_id()
    assert csrf_token(a) == csrf_token(a) != csrf_token(b)
    assert len(csrf_token(a)) == 43 and a not in csrf_token(a)
    assert same_token(csrf_token(a), csrf_token(a))
    assert not same_token(None, csrf_token(a)) and not same_token("", csrf_token(a))
    assert not same_token(csrf_token(b), csrf_token(a))


def _request(headers: dict[str, str]) -> Request[Any, Any, Any]:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/console", "headers": raw, "query_string": b""})


@pytest.mark.parametrize(
    ("headers", "accepted"),
    [
        ({"Origin": "https://hermes.example.com", "Host": "internal:8000"}, True),
        ({"Origin": "http://127.0.0.1:8123", "Host": "127.0.0.1:8123"}, True),
        ({"Host": "127.0.0.1:8123"}, True),  # no Origin at all (very old browsers): the token decides
        ({"Host": "127.0.0.1:8123", "Sec-Fetch-Site": "same-origin"}, True),
        ({"Host": "127.0.0.1:8123", "Sec-Fetch-Site": "cross-site"}, False),
        ({"Origin": "https://evil.example", "Host": "hermes.example.com"}, False),
        ({"Origin": "null", "Host": "hermes.example.com"}, False),
        ({"Origin": "https://hermes.example.com.evil.example", "Host": "internal"}, False),
        ({"Origin": "http://127.0.0.1:8124", "Host": "127.0.0.1:8123"}, False),
        ({"Origin": "javascript://127.0.0.1:8123", "Host": "127.0.0.1:8123"}, False),
    ],
)
def test_posts_are_accepted_only_from_the_consoles_own_origin(headers: dict[str, str], accepted: bool) -> None:
    policy = ConsolePolicy(origin=public_origin("https://Hermes.example.com/base/"))
    assert policy.origin == "https://hermes.example.com" and policy.secure
    assert same_origin(_request(headers), policy) is accepted


def test_connect_form_labels_come_from_the_credential_schemas() -> None:
    labels = {p: [field_label(f.name) for f in p.credentials.form_fields] for p in Platform}
    assert labels[Platform.WHATSAPP] == ["Phone number ID", "Access token", "Business account ID"]
    assert labels[Platform.EMAIL][:3] == ["SMTP host", "SMTP port", "SMTP security"]
    assert labels[Platform.INSTAGRAM] == ["Access token", "IG user ID"]
    assert labels[Platform.OBSIDIAN] == ["API URL", "API key"]
    email = {f.name: f for f in Platform.EMAIL.credentials.fields}
    assert email["smtpSecurity"].choices == ("ssl", "starttls", "none")
    assert email["imapSecurity"].choices == ("ssl", "starttls", "none") and not email["imapSecurity"].required


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[AsyncTestClient[Litestar]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hermes.db'}"
    await upgrade_url(url)
    app = make_app(make_settings(HERMES_DATABASE_URL=url, HERMES_PUBLIC_URL="http://testserver.local"), env={})
    async with AsyncTestClient(app) as client:
        client.follow_redirects = False
        yield client


def _console_routes(app: Litestar, method: str) -> list[str]:
    """Every console page answering `method`, read from the app, with sample path parameters filled in."""
    samples = {"platform": "telegram", "decision": "approve"}
    paths = [r.path for r in app.routes if r.path.startswith(CONSOLE) and method in getattr(r, "methods", ())]
    return [re.sub(r"\{(\w+):str\}", lambda m: samples.get(m[1], "x1"), p) for p in paths]


async def test_every_console_page_runs_only_for_a_signed_in_customer_and_every_form_only_from_its_page(
    app_client: AsyncTestClient[Litestar],
) -> None:
    made = await app_client.post(
        "/admin/customers",
        json={"email": "o@example.com", "plan": "pro"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    key = made.json()["apiKey"]
    own = {"Origin": "http://testserver.local"}
    pages = [p for p in _console_routes(app_client.app, "GET") if p not in (SIGN_IN, STYLE_SHEET)]
    forms = [p for p in _console_routes(app_client.app, "POST") if p != SIGN_IN]
    assert len(pages) >= 10 and len(forms) >= 6

    for page in pages:
        answer = await app_client.get(page)
        assert answer.status_code == 303 and answer.headers["location"].startswith(SIGN_IN), page
    for form in forms:
        answer = await app_client.post(form, data={"csrf": "x"}, headers=own)
        assert answer.status_code == 303 and answer.headers["location"] == SIGN_IN, form

    sign_in = await app_client.get(SIGN_IN)
    browser = re.search(r'name="csrf" value="([^"]+)"', sign_in.text)
    assert browser is not None
    signed_in = await app_client.post(SIGN_IN, data={"csrf": browser[1], "api_key": key}, headers=own)
    assert signed_in.status_code == 303
    overview = await app_client.get(CONSOLE)
    csrf = re.search(r'name="csrf" value="([^"]+)"', overview.text)
    assert overview.status_code == 200 and csrf is not None
    for form in forms:
        for data, headers in (({"csrf": csrf[1]}, {"Origin": "https://evil.example"}), ({"csrf": "x"}, own), ({}, own)):
            refused = await app_client.post(form, data=data, headers=headers)
            assert refused.status_code == 403 and "This form cannot be accepted" in refused.text, (form, data, headers)
    # Nothing a refused form asked for happened: the session it would have ended still opens pages.
    assert (await app_client.get(CONSOLE)).status_code == 200
