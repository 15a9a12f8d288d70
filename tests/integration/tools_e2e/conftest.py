"""Fixtures of the end-to-end tool tests: the fakes and two Hermes instances, shared by the package.

Starting dovecot and eight fakes once, and Hermes once per mode, keeps the ~100 calls of this
package in seconds; every test starts from empty request logs (`_fresh_fakes`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hermes.entrypoints.settings import Settings
from tests.fakes.linkedin import current_version
from tests.fakes.mail import DovecotUnavailable, ImapServer, ensure_dovecot
from tests.integration.server import HermesServer
from tests.integration.tools_e2e.world import Fakes, Tenant, connect, create_customer
from tests.support import ADMIN_TOKEN, MCP_API_KEY, make_settings


@pytest.fixture(scope="package")
def fakes() -> Iterator[Fakes]:
    try:
        ensure_dovecot()
    except DovecotUnavailable as exc:
        pytest.skip(str(exc))
    with ImapServer() as imap:
        world = Fakes.start(imap)
        try:
            yield world
        finally:
            world.stop()
    errors = world.handler_errors()
    if errors:
        pytest.fail("a fake platform raised inside a handler:\n" + "\n".join(errors))


@pytest.fixture(autouse=True)
def _fresh_fakes(fakes: Fakes) -> None:
    fakes.reset()


@pytest.fixture(scope="package")
def e2e_settings(mariadb_url: str, redis_url: str, fakes: Fakes) -> Settings:
    """Real MariaDB and Redis; every platform API base pointed at its fake (make_settings allows loopback hosts)."""
    return make_settings(
        HERMES_DATABASE_URL=mariadb_url,
        HERMES_REDIS_URL=redis_url,
        HERMES_LINKEDIN_VERSION=current_version(),
        **fakes.api_bases(),
    )


@pytest.fixture(scope="package")
def customer_server(e2e_settings: Settings) -> Iterator[HermesServer]:
    with HermesServer(e2e_settings) as server:
        yield server


@pytest.fixture(scope="package")
def customer(customer_server: HermesServer, fakes: Fakes) -> Tenant:
    """A customer created through the admin API that connected all eight platforms (verified)."""
    account = fakes.new_account("alice")
    created = create_customer(customer_server, ADMIN_TOKEN, plan="pro", label="alice")
    connect(customer_server, created["apiKey"], account.connect_bodies(fakes.smtp, fakes.imap))
    return Tenant(customer_server, created["apiKey"], account, created["id"])


@pytest.fixture(scope="package")
def single_user(e2e_settings: Settings, fakes: Fakes) -> Iterator[Tenant]:
    """The single-user deployment: MCP_API_KEY, every platform configured by `{PLATFORM}_DEFAULT_*`."""
    account = fakes.new_account("solo")
    with HermesServer(e2e_settings, account.env(fakes.smtp, fakes.imap)) as server:
        yield Tenant(server, MCP_API_KEY, account)


@pytest.fixture
def tenants(customer: Tenant, single_user: Tenant) -> dict[str, Tenant]:
    return {"customer": customer, "single-user": single_user}
