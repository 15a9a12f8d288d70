"""The email plug-in against real servers: aiosmtpd for SMTP, a private dovecot for IMAP.

Tools are called directly (parse, then run with credentials), as CallTool does. The
servers listen on 127.0.0.1, so the plug-in runs with allow_private_networks=True,
except in the tests of the SSRF guard itself.
"""

from __future__ import annotations

import asyncio
import email.policy
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.email import plugin
from hermes.adapters.platforms.http import make_client
from hermes.adapters.platforms.network import HostGuard, system_resolver
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.application.ports.tools import ToolContext
from hermes.domain.credentials import Credentials
from hermes.domain.errors import Invalid, NotConnected, NotFound, PlatformRejected
from hermes.entrypoints.http.problems import error_text
from tests.fakes.mail import ImapServer, ImapUser, SmtpSecurity, SmtpServer, tls_files

pytestmark = pytest.mark.integration

SECURITIES: list[SmtpSecurity] = ["none", "starttls", "ssl"]
CONFIG = PlatformConfig(api_bases={}, allow_private_networks=True, connect_timeout=5, read_timeout=10, total_timeout=20)

imap_server = ImapServer.fixture(scope="module", tls=True)


@pytest.fixture
def imap_user(imap_server: ImapServer) -> ImapUser:
    return imap_server.new_user()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    client = make_client(CONFIG)
    yield client
    await client.aclose()


def build(http: httpx.AsyncClient, config: PlatformConfig = CONFIG, **kwargs: Any) -> PlatformPlugin:
    kwargs.setdefault("tls", tls_files().client_context())
    return plugin(http, config, **kwargs)


@pytest.fixture
def mail(http: httpx.AsyncClient) -> PlatformPlugin:
    return build(http)


def creds_for(
    smtp: SmtpServer | None,
    user: ImapUser | None = None,
    imap: ImapServer | None = None,
    *,
    imap_security: SmtpSecurity = "none",
    host: str = "localhost",
    **overrides: Any,
) -> Credentials:
    """Credentials as POST /api/connect/email stores them; one username/password for SMTP and IMAP."""
    creds: Credentials = {
        "smtpHost": host,
        "smtpPort": smtp.port if smtp else 1,
        "smtpSecurity": smtp.security if smtp else "none",
        "username": user.name if user else (smtp.username if smtp and smtp.username else "agent@example.test"),
        "password": user.password if user else (smtp.password if smtp else "pw"),
        "fromAddress": "agent@example.test",
    }
    if imap is not None:
        creds.update({"imapHost": host, "imapPort": imap.port_for(imap_security), "imapSecurity": imap_security})
    creds.update(overrides)
    return creds


async def call(mail: PlatformPlugin, name: str, args: dict[str, Any], creds: Credentials) -> dict[str, Any]:
    tool = next(t for t in mail.tools if t.spec.name == name)
    return await tool.run(tool.parse(args), ToolContext(customer_id="c1", credentials=creds))


def smtp_for(user: ImapUser, **kwargs: Any) -> SmtpServer:
    return SmtpServer(username=user.name, password=user.password, **kwargs)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and then says nothing (a hung server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield int(sock.getsockname()[1])
    sock.close()


# --- sending ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("security", SECURITIES)
async def test_send_in_each_security_mode(mail: PlatformPlugin, imap_user: ImapUser, security: SmtpSecurity) -> None:
    async with smtp_for(imap_user, security=security) as smtp:
        result = await call(
            mail,
            "email_send",
            {
                "to": ["Bob Smith <bob@example.org>", "alice@example.org"],
                "cc": "carol@example.org",
                "bcc": ["dave@example.org"],
                "subject": "Quarterly numbers — ✓",
                "body": "<p>Revenue is <b>up</b>.</p>",
                "html": True,
            },
            creds_for(smtp, imap_user),
        )
    [received] = smtp.messages
    assert result["success"] is True
    assert result["accepted"] == ["bob@example.org", "alice@example.org", "carol@example.org", "dave@example.org"]
    assert "refused" not in result
    assert received.header("Message-ID") == result["message_id"]
    assert received.tls is (security != "none")
    assert received.auth_user == imap_user.name
    assert received.mail_from == "agent@example.test"
    assert received.to == ["bob@example.org", "alice@example.org"]
    assert received.cc == ["carol@example.org"]
    # Bcc: delivered (in the envelope), but in no header.
    assert received.header("Bcc") is None
    assert b"dave@example.org" not in received.data
    assert received.bcc == ["dave@example.org"]
    assert received.subject == "Quarterly numbers — ✓"
    assert received.message.get_content_type() == "multipart/alternative"
    assert received.html == "<p>Revenue is <b>up</b>.</p>\n"
    assert received.text == "Revenue is up.\n"


async def test_plain_text_is_a_single_part(mail: PlatformPlugin, imap_user: ImapUser) -> None:
    async with smtp_for(imap_user) as smtp:
        await call(
            mail, "email_send", {"to": "bob@example.org", "subject": "s", "body": "line\n.dot\n"}, creds_for(smtp)
        )
    [received] = smtp.messages
    assert received.message.get_content_type() == "text/plain"
    assert received.text == "line\n.dot\n"


async def test_bad_password_is_a_reconnect_after_a_single_attempt(mail: PlatformPlugin) -> None:
    async with SmtpServer(security="starttls") as smtp:
        with pytest.raises(PlatformRejected) as caught:
            await call(
                mail,
                "email_send",
                {"to": "bob@example.org", "subject": "s", "body": "b"},
                creds_for(smtp, password="wrong horse"),
            )
    error = caught.value
    assert error.reconnect
    assert "The mail server refused the username/password" in error_text(error)
    assert "Ask the account owner to reconnect Email in Hermes" in error_text(error)
    assert "wrong horse" not in error_text(error)
    assert error.code == "smtp_535"
    # One AUTH, not one per mechanism: repeated failures lock accounts out.
    assert [a.success for a in smtp.auth_attempts] == [False]
    assert smtp.messages == []


async def test_refused_recipients_are_named(mail: PlatformPlugin) -> None:
    async with SmtpServer(reject_recipients=["ghost@example.org", "nobody@example.org"]) as smtp:
        partial = await call(
            mail,
            "email_send",
            {"to": ["bob@example.org", "ghost@example.org"], "subject": "s", "body": "b"},
            creds_for(smtp),
        )
        with pytest.raises(PlatformRejected) as caught:
            await call(
                mail,
                "email_send",
                {"to": "ghost@example.org", "cc": "nobody@example.org", "subject": "s", "body": "b"},
                creds_for(smtp),
            )
    assert partial["accepted"] == ["bob@example.org"]
    assert partial["refused"] == [{"address": "ghost@example.org", "reason": partial["refused"][0]["reason"]}]
    assert partial["refused"][0]["reason"].startswith("550")
    assert [m.rcpt_tos for m in smtp.messages] == [("bob@example.org",)]
    assert caught.value.code == "recipients_refused"
    assert "ghost@example.org (550" in error_text(caught.value)
    assert "nobody@example.org (550" in error_text(caught.value)


async def test_a_rejected_message_says_why(mail: PlatformPlugin) -> None:
    async with SmtpServer() as smtp:
        smtp.data_response = "451 4.3.0 Try again later"
        with pytest.raises(PlatformRejected) as caught:
            await call(mail, "email_send", {"to": "bob@example.org", "subject": "s", "body": "b"}, creds_for(smtp))
    assert caught.value.code == "smtp_451"
    assert caught.value.retry_after is not None
    assert error_text(caught.value) == (
        "Email error 451: 4.3.0 Try again later. The mail server refused the message. Nothing was sent. "
        "Try again in 60 s."
    )


async def test_invalid_recipients_are_refused_before_connecting(mail: PlatformPlugin, closed_port: int) -> None:
    creds = creds_for(None, smtpPort=closed_port)
    with pytest.raises(Invalid) as caught:
        await call(mail, "email_send", {"to": "bob@example.org, not-an-address", "subject": "s", "body": "b"}, creds)
    assert "not-an-address" in error_text(caught.value)
    with pytest.raises(Invalid) as caught:
        await call(mail, "email_send", {"to": "bob@example.org", "bcc": ["x@"], "subject": "s", "body": "b"}, creds)
    assert list(caught.value.fields) == ["bcc"]
    with pytest.raises(Invalid) as caught:
        await call(
            mail, "email_send", {"to": "bob@example.org", "subject": "a\r\nBcc: x@example.org", "body": "b"}, creds
        )
    assert caught.value.fields == {"subject": "must not contain line breaks"}


async def test_connection_refused_says_what_to_check(mail: PlatformPlugin, closed_port: int) -> None:
    with pytest.raises(PlatformRejected) as caught:
        await call(
            mail,
            "email_send",
            {"to": "bob@example.org", "subject": "s", "body": "b"},
            creds_for(None, smtpPort=closed_port),
        )
    assert caught.value.code == "unreachable"
    assert caught.value.retry_after is not None
    assert "refused the connection" in error_text(caught.value)
    assert "smtpHost/smtpPort/smtpSecurity" in error_text(caught.value)


async def test_a_silent_server_times_out(http: httpx.AsyncClient, silent_port: int) -> None:
    quick = PlatformConfig(api_bases={}, allow_private_networks=True, read_timeout=0.3, total_timeout=1.0)
    mail = build(http, quick)
    started = asyncio.get_running_loop().time()
    with pytest.raises(PlatformRejected) as caught:
        await call(
            mail,
            "email_send",
            {"to": "bob@example.org", "subject": "s", "body": "b"},
            creds_for(None, smtpPort=silent_port),
        )
    assert asyncio.get_running_loop().time() - started < 3
    assert caught.value.code == "timeout"
    assert "did not answer in time" in error_text(caught.value)


async def test_starttls_is_never_skipped(mail: PlatformPlugin) -> None:
    async with SmtpServer(security="none") as smtp:
        with pytest.raises(PlatformRejected) as caught:
            await call(
                mail,
                "email_send",
                {"to": "bob@example.org", "subject": "s", "body": "b"},
                creds_for(smtp, smtpSecurity="starttls"),
            )
    assert "STARTTLS" in error_text(caught.value)
    assert smtp.auth_attempts == []
    assert smtp.messages == []


async def test_untrusted_certificates_are_refused(http: httpx.AsyncClient) -> None:
    system_trust = build(http, tls=None)  # the system store does not know the test CA
    async with SmtpServer(security="ssl") as smtp:
        with pytest.raises(PlatformRejected) as caught:
            await call(
                system_trust, "email_send", {"to": "bob@example.org", "subject": "s", "body": "b"}, creds_for(smtp)
            )
    assert caught.value.code == "tls_certificate"
    assert smtp.auth_attempts == []


@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_the_certificate_is_checked_against_the_host_name_not_the_address(
    http: httpx.AsyncClient, imap_server: ImapServer, imap_user: ImapUser, security: SmtpSecurity
) -> None:
    # mail.test resolves to 127.0.0.1, which the certificate covers; the name mail.test it does not. A refusal
    # means the connection went to the vetted address while TLS checked the customer's host name.
    async def resolve(host: str, port: int) -> Sequence[str]:
        return ["127.0.0.1"] if host == "mail.test" else await system_resolver(host, port)

    mail = build(http, guard=HostGuard(True, resolver=resolve))
    message = {"to": "b@example.org", "subject": "s", "body": "b"}
    async with smtp_for(imap_user, security=security) as smtp:
        with pytest.raises(PlatformRejected) as smtp_refused:
            await call(mail, "email_send", message, creds_for(smtp, imap_user, host="mail.test"))
        await call(mail, "email_send", message, creds_for(smtp, imap_user, host="localhost"))
        imap_creds = creds_for(smtp, imap_user, imap_server, imap_security=security)
        with pytest.raises(PlatformRejected) as imap_refused:
            await call(mail, "email_search", {}, {**imap_creds, "imapHost": "mail.test"})
        await call(mail, "email_search", {}, imap_creds)
    assert smtp_refused.value.code == imap_refused.value.code == "tls_certificate"
    assert "mail.test" in smtp_refused.value.detail
    assert "mail.test" in imap_refused.value.detail
    assert len(smtp.messages) == 1
    assert [a.success for a in smtp.auth_attempts] == [True]  # no password went to the wrong name


# --- verify ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("security", SECURITIES)
async def test_verify_logs_in_without_sending(
    mail: PlatformPlugin, imap_server: ImapServer, imap_user: ImapUser, security: SmtpSecurity
) -> None:
    async with smtp_for(imap_user, security=security) as smtp:
        await mail.verify(creds_for(smtp, imap_user, imap_server, imap_security=security))
    assert smtp.messages == []
    assert [a.success for a in smtp.auth_attempts] == [True]
    logins = [login for login in imap_server.logins(min_count=1) if login.user == imap_user.name]
    assert logins
    assert logins[-1].tls is (security != "none")


async def test_verify_refuses_a_wrong_imap_password(
    mail: PlatformPlugin, imap_server: ImapServer, imap_user: ImapUser
) -> None:
    other = imap_server.new_user()
    async with smtp_for(imap_user) as smtp:
        creds = creds_for(smtp, imap_user, imap_server)
        creds["imapHost"] = "localhost"
        imap_server.add_user(imap_user.name, other.password)  # the IMAP password changed since
        with pytest.raises(PlatformRejected) as caught:
            await mail.verify(creds)
    assert caught.value.reconnect
    assert "IMAP" in error_text(caught.value)
    assert imap_user.password not in error_text(caught.value)


# --- the SSRF guard --------------------------------------------------------------------------------------


async def test_private_hosts_are_refused_unless_allowed(
    http: httpx.AsyncClient, imap_server: ImapServer, imap_user: ImapUser
) -> None:
    strict = build(http, PlatformConfig(api_bases={}))
    async with smtp_for(imap_user) as smtp:
        creds = creds_for(smtp, imap_user, imap_server)
        with pytest.raises(Invalid) as at_connect:
            await strict.verify(creds)
        with pytest.raises(PlatformRejected) as at_send:
            await call(strict, "email_send", {"to": "b@example.org", "subject": "s", "body": "b"}, creds)
        with pytest.raises(PlatformRejected) as at_search:
            await call(strict, "email_search", {}, creds)
    assert at_connect.value.fields == {
        "smtpHost": "resolves to a loopback address (127.0.0.1)",
        "imapHost": "resolves to a loopback address (127.0.0.1)",
    }
    assert "smtpHost localhost resolves to a loopback address" in error_text(at_connect.value)
    assert at_send.value.code == "unsafe_host"
    assert at_send.value.reconnect
    assert "smtpHost localhost resolves to a loopback address" in at_send.value.detail
    assert "imapHost" in at_search.value.detail
    # Refused before any connection: the server never saw us.
    assert smtp.auth_attempts == []
    assert smtp.messages == []


async def test_verify_names_every_refused_host(http: httpx.AsyncClient) -> None:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return {"smtp.example.com": ["192.168.1.25"], "imap.example.com": ["fd12::7"]}[host]

    strict = build(http, PlatformConfig(api_bases={}), guard=HostGuard(False, resolver=resolve))
    creds = creds_for(None, smtpHost="smtp.example.com", imapHost="imap.example.com", imapPort=993, imapSecurity="ssl")
    with pytest.raises(Invalid) as caught:
        await strict.verify(creds)
    assert caught.value.fields == {
        "smtpHost": "resolves to a private address (192.168.1.25)",
        "imapHost": "resolves to a private address (fd12::7)",
    }


# --- searching and reading -------------------------------------------------------------------------------


def _message(subject: str, body: str, sender: str = "Alice <alice@example.org>", **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "agent@example.test"
    message["Subject"] = subject
    message["Date"] = headers.pop("date", "Mon, 04 May 2026 09:00:00 +0000")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


@pytest.mark.parametrize("security", SECURITIES)
async def test_search_finds_a_sent_message_and_read_returns_it(
    mail: PlatformPlugin, imap_server: ImapServer, imap_user: ImapUser, security: SmtpSecurity
) -> None:
    async with smtp_for(imap_user) as smtp:
        creds = creds_for(smtp, imap_user, imap_server, imap_security=security)
        sent = await call(
            mail,
            "email_send",
            {"to": imap_user.name, "subject": "Quarterly report", "body": "Revenue is up 12%.\nSee you Monday.\n"},
            creds,
        )
    # What the SMTP server accepted lands in the mailbox, as a mail delivery agent would store it.
    imap_server.deliver(imap_user.name, _message("Lunch?", "Pizza at noon"))
    uid = imap_server.deliver(imap_user.name, smtp.messages[0].data)
    imap_server.deliver(imap_user.name, _message("Unrelated", "nothing to see", sender="bob@example.org"))

    found = await call(mail, "email_search", {"query": "quarterly revenue"}, creds)
    assert found["folder"] == "INBOX"
    assert found["total"] == 1
    [row] = found["messages"]
    assert row["uid"] == uid
    assert row["subject"] == "Quarterly report"
    assert row["from"] == "agent@example.test"
    assert row["to"] == [imap_user.name]
    assert row["seen"] is False
    assert row["size"] > 0
    assert "text" not in row

    message = await call(mail, "email_read", {"uid": uid}, creds)
    assert message["text"] == "Revenue is up 12%.\nSee you Monday.\n"
    assert message["message_id"] == sent["message_id"]
    assert message["subject"] == "Quarterly report"
    assert message["attachments"] == []
    # email_read peeks: the message stays unread.
    stored = {m.uid: m for m in imap_server.messages(imap_user.name)}
    assert "\\Seen" not in stored[uid].flags
    logins = [login for login in imap_server.logins(min_count=2) if login.user == imap_user.name]
    assert all(login.tls is (security != "none") for login in logins)


async def test_listing_is_newest_first_and_limited(
    mail: PlatformPlugin, imap_server: ImapServer, imap_user: ImapUser
) -> None:
    uids = [imap_server.deliver(imap_user.name, _message(f"Note {i}", f"body {i}")) for i in range(5)]
    imap_server.deliver(imap_user.name, _message("Read one", "seen body"), seen=True)
    creds = creds_for(None, imap_user, imap_server)
    listed = await call(mail, "email_search", {"limit": 3}, creds)
    assert listed["total"] == 6
    assert [m["subject"] for m in listed["messages"]] == ["Read one", "Note 4", "Note 3"]
    assert listed["messages"][0]["seen"] is True
    assert listed["messages"][1]["uid"] == uids[4]
    assert listed["messages"][1]["date"] == "2026-05-04T09:00:00+00:00"


async def test_search_with_non_ascii_words_and_folders(
    mail: PlatformPlugin, imap_server: ImapServer, imap_user: ImapUser
) -> None:
    imap_server.deliver(imap_user.name, _message("Café meeting", "Treffen im Café"), folder="Entwürfe")
    imap_server.deliver(imap_user.name, _message("Other", "no match here"), folder="Entwürfe")
    creds = creds_for(None, imap_user, imap_server)
    found = await call(mail, "email_search", {"query": "café", "folder": "Entwürfe"}, creds)
    assert [m["subject"] for m in found["messages"]] == ["Café meeting"]
    injected = await call(mail, "email_search", {"query": '") OR ALL ("', "folder": "Entwürfe"}, creds)
    assert injected["total"] == 0


async def test_read_returns_html_and_attachments(
    mail: PlatformPlugin, imap_server: ImapServer, imap_user: ImapUser
) -> None:
    message = _message("Invoice", "Please find the invoice attached.", In_Reply_To="<prev@example.test>")
    message.add_alternative("<p>Please find the <b>invoice</b> attached.</p>", subtype="html")
    message.add_attachment(b"%PDF-1.4 " + b"x" * 1000, maintype="application", subtype="pdf", filename="invoice.pdf")
    uid = imap_server.deliver(imap_user.name, message.as_bytes(policy=email.policy.SMTP))
    read = await call(mail, "email_read", {"uid": uid}, creds_for(None, imap_user, imap_server))
    assert read["text"] == "Please find the invoice attached.\n"
    assert read["html"] == "<p>Please find the <b>invoice</b> attached.</p>\n"
    assert read["in_reply_to"] == "<prev@example.test>"
    assert read["attachments"] == [{"filename": "invoice.pdf", "content_type": "application/pdf", "size": 1009}]
    assert "partial" not in read


async def test_large_messages_are_read_partially(
    http: httpx.AsyncClient, imap_server: ImapServer, imap_user: ImapUser
) -> None:
    small = PlatformConfig(api_bases={}, allow_private_networks=True, email_max_message_bytes=4096)
    message = _message("Big", "The text comes first.")
    message.add_attachment(b"\0" * 50_000, maintype="application", subtype="octet-stream", filename="big.bin")
    uid = imap_server.deliver(imap_user.name, message)
    read = await call(build(http, small), "email_read", {"uid": uid}, creds_for(None, imap_user, imap_server))
    assert read["partial"] is True
    assert read["size"] > 50_000
    assert read["text"] == "The text comes first.\n"


async def test_unknown_uids_and_folders_are_not_found(
    mail: PlatformPlugin, imap_server: ImapServer, imap_user: ImapUser
) -> None:
    creds = creds_for(None, imap_user, imap_server)
    with pytest.raises(NotFound, match="no message with uid 4242 in INBOX"):
        await call(mail, "email_read", {"uid": 4242}, creds)
    with pytest.raises(NotFound, match="'Nowhere' cannot be opened"):
        await call(mail, "email_search", {"folder": "Nowhere"}, creds)


async def test_imap_login_with_awkward_passwords(mail: PlatformPlugin, imap_server: ImapServer) -> None:
    user = imap_server.add_user("quote-user@example.test", 'p"a\\ss w:rd ü')
    listed = await call(mail, "email_search", {}, creds_for(None, user, imap_server))
    assert listed == {"folder": "INBOX", "total": 0, "messages": []}


async def test_a_wrong_imap_password_is_a_reconnect(
    mail: PlatformPlugin, imap_server: ImapServer, imap_user: ImapUser
) -> None:
    creds = creds_for(None, imap_user, imap_server, password="not it")
    with pytest.raises(PlatformRejected) as caught:
        await call(mail, "email_search", {}, creds)
    assert caught.value.reconnect
    assert "Ask the account owner to reconnect Email in Hermes" in error_text(caught.value)
    assert "not it" not in error_text(caught.value)


async def test_imap_tools_need_imap_settings(mail: PlatformPlugin, closed_port: int) -> None:
    with pytest.raises(NotConnected) as caught:
        await call(mail, "email_search", {"query": "x"}, creds_for(None, smtpPort=closed_port))
    assert "imapHost" in error_text(caught.value)
    assert "Ask the account owner to reconnect Email in Hermes" in error_text(caught.value)


async def test_a_silent_imap_server_times_out(http: httpx.AsyncClient, silent_port: int) -> None:
    quick = PlatformConfig(
        api_bases={}, allow_private_networks=True, connect_timeout=0.3, read_timeout=0.3, total_timeout=1.0
    )
    creds = creds_for(None, imapHost="localhost", imapPort=silent_port, imapSecurity="none")
    with pytest.raises(PlatformRejected) as caught:
        await call(build(http, quick), "email_search", {}, creds)
    assert caught.value.code == "timeout"
