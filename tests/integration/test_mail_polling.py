"""Email inbound for real: Hermes polls a private dovecot's INBOX and routes what arrives into the inbox.

Servers run with a short poll interval; mail is delivered through dovecot's own storage
(`doveadm save`), as a mail server's delivery agent would. Each test has a Redis of its own:
Hermes instances of other test sessions consume the shared inbound stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from hermes.adapters.sql.migrate import upgrade_url
from hermes.entrypoints.settings import Settings
from tests.fakes.mail import ImapServer, ImapUser
from tests.integration.hostile.hostile_servers import HostileImap
from tests.integration.server import HermesServer
from tests.integration.test_inbound_flows import OwnRedis, inbox_of
from tests.support import make_settings

pytestmark = pytest.mark.integration

INTERVAL = 0.3
imap_server = ImapServer.fixture(scope="module")


@pytest.fixture
def redis_of_its_own(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    server.start()
    yield server
    server.close()


@pytest.fixture
def settings(mariadb_url: str, redis_of_its_own: OwnRedis) -> Settings:
    return make_settings(HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=redis_of_its_own.url)


def polling(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "HERMES_DATABASE_URL": settings.database_url,
        "HERMES_REDIS_URL": settings.redis_url,
        "HERMES_ENCRYPTION_KEYS": settings.encryption_keys,
        "HERMES_EMAIL_POLL_SECONDS": INTERVAL,
        "HERMES_PLATFORM_TIMEOUT": 3,
    }
    values.update(overrides)
    return make_settings(**values)


def credentials(user: ImapUser, port: int) -> dict[str, Any]:
    return {
        "smtpHost": "127.0.0.1",
        "smtpPort": 1,
        "smtpSecurity": "none",
        "username": user.name,
        "password": user.password,
        "fromAddress": user.name,
        "imapHost": "127.0.0.1",
        "imapPort": port,
        "imapSecurity": "none",
    }


async def mail_customer(server: HermesServer, user: ImapUser, port: int) -> str:
    customer = await server.create_customer()
    async with server.client(customer["apiKey"]) as client:
        # The tests read mail over IMAP; nothing listens for SMTP, so the connect does not check it.
        reply = await client.post("/api/connect/email?verify=false", json=credentials(user, port))
        assert reply.status_code == 200, reply.text
    key: str = customer["apiKey"]
    return key


def message(subject: str, message_id: str, *, in_reply_to: str | None = None) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Alice Sender <alice@sender.example>"
    mail["To"] = "owner@example.test"
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    mail.set_content(f"Body of {subject}")
    return mail


async def emails(server: HermesServer, key: str) -> list[dict[str, Any]]:
    page = await inbox_of(server, key, platform="email", limit=100)
    return [e["message"] for e in page["entries"]]


async def wait_for_subjects(
    server: HermesServer, key: str, subjects: list[str], timeout: float = 10.0, *, in_order: bool = True
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = [m.get("subject") for m in await emails(server, key)]
        if found == subjects or (not in_order and sorted(found) == sorted(subjects)):
            return
        assert time.monotonic() < deadline, f"inbox has {found}, expected {subjects}"
        await asyncio.sleep(0.1)


async def deliver(imap: ImapServer, user: ImapUser, mail: EmailMessage) -> int:
    return await asyncio.to_thread(imap.deliver, user.name, mail)


async def test_a_delivered_message_reaches_the_inbox_with_its_headers(
    settings: Settings, start_hermes: Any, imap_server: ImapServer
) -> None:
    server = start_hermes(polling(settings))
    user = imap_server.new_user()
    key = await mail_customer(server, user, imap_server.port)
    await asyncio.sleep(3 * INTERVAL)  # the first poll learns the (empty) mailbox
    await deliver(imap_server, user, message("Invoice 42", "<inv-42@sender.example>", in_reply_to="<q@owner>"))

    await wait_for_subjects(server, key, ["Invoice 42"])
    [received] = await emails(server, key)
    assert received["from"] == "alice@sender.example"
    assert received["contactName"] == "Alice Sender"
    assert received["id"] == "<inv-42@sender.example>"
    assert received["replyTo"] == "<q@owner>" and received["references"] == ["<q@owner>"]
    assert received["text"] == "Body of Invoice 42"
    assert received["to"] == user.name


async def test_a_second_email_account_is_polled_into_its_own_account(
    settings: Settings, start_hermes: Any, imap_server: ImapServer
) -> None:
    server = start_hermes(polling(settings))
    home, office = imap_server.new_user(), imap_server.new_user()
    key = await mail_customer(server, home, imap_server.port)
    async with server.client(key) as client:
        work = await client.post(
            "/api/connect/email?verify=false&account=work", json=credentials(office, imap_server.port)
        )
        assert work.status_code == 200, work.text
    await asyncio.sleep(3 * INTERVAL)  # the first polls learn the (empty) mailboxes
    await deliver(imap_server, home, message("For home", "<home-1@sender.example>"))
    await deliver(imap_server, office, message("For the office", "<office-1@sender.example>"))

    await wait_for_subjects(server, key, ["For home", "For the office"], in_order=False)
    page = await inbox_of(server, key, platform="email", limit=100)
    assert sorted((e["account"], e["message"]["subject"], e["message"]["to"]) for e in page["entries"]) == [
        ("default", "For home", home.name),
        ("work", "For the office", office.name),
    ]
    async with server.client(key) as client:
        listed = (await client.get("/api/conversations", params={"account": "work"})).json()["conversations"]
        assert [(c["account"], c["platform"]) for c in listed] == [("work", "email")]
        # Disconnecting the second account stops its polling; the first one is still read.
        assert (await client.delete("/api/connect/email?account=work")).status_code == 200
    await asyncio.sleep(3 * INTERVAL)
    await deliver(imap_server, office, message("Too late", "<office-2@sender.example>"))
    await deliver(imap_server, home, message("Home again", "<home-2@sender.example>"))
    await wait_for_subjects(server, key, ["For home", "For the office", "Home again"], in_order=False)
    await asyncio.sleep(3 * INTERVAL)
    assert "Too late" not in [m.get("subject") for m in await emails(server, key)]


async def test_two_instances_polling_one_account_route_each_message_once(
    settings: Settings, start_hermes: Any, imap_server: ImapServer
) -> None:
    first = start_hermes(polling(settings))
    start_hermes(polling(settings))
    user = imap_server.new_user()
    key = await mail_customer(first, user, imap_server.port)
    subjects = [f"parallel {n}" for n in range(5)]
    started = time.monotonic()
    for subject in subjects:
        await deliver(imap_server, user, message(subject, f"<{subject.replace(' ', '-')}@sender.example>"))
        await asyncio.sleep(INTERVAL / 2)
    # Each instance routes what it queued: the two may append in either order, but each message once.
    await wait_for_subjects(first, key, subjects, in_order=False)
    await asyncio.sleep(5 * INTERVAL)
    await wait_for_subjects(first, key, subjects, timeout=0, in_order=False)
    # One instance at a time, about once per interval, however many instances run.
    elapsed = time.monotonic() - started
    logins = len(imap_server.logins(user.name))
    assert logins <= elapsed / (0.9 * INTERVAL) + 3, (logins, elapsed)


async def test_polling_resumes_after_the_imap_server_was_down_and_nothing_is_lost_or_repeated(
    settings: Settings, start_hermes: Any
) -> None:
    with ImapServer() as imap:
        server = start_hermes(polling(settings))
        user = imap.new_user()
        key = await mail_customer(server, user, imap.port)
        await deliver(imap, user, message("before", "<before@sender.example>"))
        await wait_for_subjects(server, key, ["before"])

        await asyncio.to_thread(imap.kill)
        await asyncio.sleep(6 * INTERVAL)  # several failed polls, each logged, none fatal
        await asyncio.to_thread(imap.revive)
        await deliver(imap, user, message("after", "<after@sender.example>"))

        # Backoff after three or four failures: at most 16 intervals (about 5 s) to the next try.
        await wait_for_subjects(server, key, ["before", "after"], timeout=15)
        await asyncio.sleep(4 * INTERVAL)
        await wait_for_subjects(server, key, ["before", "after"], timeout=0)


async def test_a_uidvalidity_change_starts_over_without_repeating_what_was_routed(
    settings: Settings, start_hermes: Any, imap_server: ImapServer
) -> None:
    server = start_hermes(polling(settings))
    user = imap_server.new_user()
    key = await mail_customer(server, user, imap_server.port)
    await deliver(imap_server, user, message("first", "<first@sender.example>"))
    await wait_for_subjects(server, key, ["first"])

    await asyncio.to_thread(
        imap_server.doveadm, "mailbox", "update", "-u", user.name, "--uid-validity", "4242", "INBOX"
    )
    await deliver(imap_server, user, message("second", "<second@sender.example>"))

    await wait_for_subjects(server, key, ["first", "second"])
    await asyncio.sleep(4 * INTERVAL)
    await wait_for_subjects(server, key, ["first", "second"], timeout=0)


async def test_a_dripping_imap_server_does_not_hold_up_other_accounts(
    settings: Settings, start_hermes: Any, imap_server: ImapServer
) -> None:
    with HostileImap(literal=5000, drip=0.5) as hostile:
        server = start_hermes(polling(settings, HERMES_EMAIL_POLL_CONCURRENCY=2))
        hostile_user = ImapUser("mallory@example.test", "pw")
        await mail_customer(server, hostile_user, hostile.port)
        user = imap_server.new_user()
        key = await mail_customer(server, user, imap_server.port)
        stalled = []
        for n in range(3):
            await deliver(imap_server, user, message(f"meanwhile {n}", f"<meanwhile-{n}@sender.example>"))
            await wait_for_subjects(server, key, [f"meanwhile {i}" for i in range(n + 1)], timeout=2)
            stalled.append(hostile.open_connections)
        assert max(stalled) >= 1  # the hostile server was holding a poll open all along


async def test_embedded_mode_polls_from_the_sql_database(
    start_hermes: Any, imap_server: ImapServer, tmp_path: Path
) -> None:
    embedded = make_settings(
        HERMES_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'hermes.db'}",
        HERMES_EMAIL_POLL_SECONDS=INTERVAL,
    )
    await upgrade_url(embedded.database_url)
    server = start_hermes(embedded)
    user = imap_server.new_user()
    key = await mail_customer(server, user, imap_server.port)
    await deliver(imap_server, user, message("embedded", "<embedded@sender.example>"))
    await wait_for_subjects(server, key, ["embedded"])
    async with server.client(key) as client:
        assert (await client.delete("/api/connect/email")).status_code == 200
    await deliver(imap_server, user, message("after disconnect", "<gone@sender.example>"))
    await asyncio.sleep(5 * INTERVAL)
    await wait_for_subjects(server, key, ["embedded"], timeout=0)
