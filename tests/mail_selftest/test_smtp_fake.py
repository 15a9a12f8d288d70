"""SmtpServer, driven by aiosmtplib exactly as the Hermes email gateway should drive it.

`smtp_kwargs()` is the reference mapping from our `smtpSecurity` setting to aiosmtplib arguments.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest

from tests.fakes.mail import DEFAULT_PASSWORD, DEFAULT_USERNAME, ReceivedMessage, SmtpSecurity, SmtpServer

SECURITIES: list[SmtpSecurity] = ["none", "starttls", "ssl"]

smtp_server = SmtpServer.fixture(security="none")


def smtp_kwargs(server: SmtpServer, *, password: str | None = None) -> dict[str, Any]:
    """smtpSecurity -> aiosmtplib connection arguments.

    Be explicit about start_tls: aiosmtplib's default (None) means "STARTTLS if the server offers it", which
    would silently send in clear text to a server that stops advertising STARTTLS (downgrade). So:
    ssl -> use_tls=True; starttls -> start_tls=True (fails if not offered); none -> start_tls=False.
    Certificates are verified (validate_certs defaults to True); tests trust the fake's CA via cert_bundle.
    """
    kwargs: dict[str, Any] = {
        "hostname": server.host,
        "port": server.port,
        "username": server.username,
        "password": server.password if password is None else password,
        "timeout": 10,
        "use_tls": server.security == "ssl",
        "start_tls": server.security == "starttls",
    }
    if server.tls is not None:
        kwargs["cert_bundle"] = str(server.tls.ca_path)
    return kwargs


def build_message(*, html: bool = True) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Agent Smith <agent@example.test>"
    msg["To"] = "Alice <alice@example.org>, bob@example.org"
    msg["Cc"] = "carol@example.org"
    msg["Bcc"] = "dave@example.org"
    msg["Subject"] = "Quarterly numbers — ünïcode ✓"
    msg.set_content("Plain body, line 1\n.leading dot survives\n")
    if html:
        msg.add_alternative("<p>HTML <b>body</b></p>\n", subtype="html")
    return msg


@pytest.mark.asyncio
@pytest.mark.parametrize("security", SECURITIES)
async def test_send_with_auth_in_each_security_mode(security: SmtpSecurity) -> None:
    async with SmtpServer(security=security) as server:
        errors, response = await aiosmtplib.send(build_message(), **smtp_kwargs(server))

    assert errors == {}  # per-recipient refusals; empty when all were accepted
    assert response.startswith("2.0.0") or "accepted" in response
    [received] = server.messages
    assert received.auth_user == DEFAULT_USERNAME
    assert received.tls is (security != "none")
    assert received.mail_from == "agent@example.test"
    assert sorted(received.rcpt_tos) == sorted(
        ["alice@example.org", "bob@example.org", "carol@example.org", "dave@example.org"]
    )
    assert received.to == ["alice@example.org", "bob@example.org"]
    assert received.cc == ["carol@example.org"]
    # aiosmtplib.send(EmailMessage) puts Bcc in the envelope and strips the header, as it must.
    assert received.header("Bcc") is None
    assert received.bcc == ["dave@example.org"]
    assert received.subject == "Quarterly numbers — ünïcode ✓"
    assert received.text == "Plain body, line 1\n.leading dot survives\n"
    assert received.html == "<p>HTML <b>body</b></p>\n"
    assert server.auth_attempts[-1].success


@pytest.mark.asyncio
@pytest.mark.parametrize("security", SECURITIES)
async def test_bad_password_is_refused_with_535(security: SmtpSecurity) -> None:
    async with SmtpServer(security=security) as server:
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as exc_info:
            await aiosmtplib.send(build_message(), **smtp_kwargs(server, password="wrong"))
    assert exc_info.value.code == 535
    assert server.messages == []
    # Quirk: aiosmtplib's login() tries every mechanism both sides support (cram-md5, plain, login) until one
    # works, so one bad password costs two AUTH attempts here. Matters for servers that lock accounts out.
    assert [(a.mechanism, a.login, a.success) for a in server.auth_attempts] == [
        ("PLAIN", DEFAULT_USERNAME, False),
        ("LOGIN", DEFAULT_USERNAME, False),
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_validate_credentials_without_sending(mechanism: str) -> None:
    """PLATFORMS.md 'cheap validation': connect, EHLO, STARTTLS, AUTH, QUIT. Both mechanisms work."""
    async with SmtpServer(security="starttls") as server:
        assert server.tls is not None
        client = aiosmtplib.SMTP(
            hostname=server.host, port=server.port, start_tls=True, cert_bundle=str(server.tls.ca_path)
        )
        async with client:  # connect() does EHLO + STARTTLS; exit sends QUIT
            # After STARTTLS aiosmtplib forgets the pre-TLS EHLO answer (RFC 3207) and only re-sends EHLO
            # lazily, so ask for it before inspecting extensions. (auth_*/login/sendmail do it themselves.)
            assert client.is_ehlo_or_helo_needed
            await client.ehlo()
            assert client.supports_extension("auth")  # only advertised after STARTTLS
            if mechanism == "PLAIN":
                await client.auth_plain(server.username or "", server.password)
            else:
                await client.auth_login(server.username or "", server.password)
        assert server.messages == []
        assert server.auth_attempts[-1].mechanism == mechanism
        assert server.auth_attempts[-1].success


@pytest.mark.asyncio
async def test_starttls_server_refuses_cleartext_clients() -> None:
    async with SmtpServer(security="starttls") as server:
        kwargs = smtp_kwargs(server) | {"start_tls": False}
        # AUTH isn't even advertised before STARTTLS, so aiosmtplib gives up before sending credentials.
        with pytest.raises(aiosmtplib.SMTPException, match="AUTH"):
            await aiosmtplib.send(build_message(), **kwargs)
        # And without credentials, MAIL is refused until STARTTLS.
        kwargs |= {"username": None, "password": None}
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as exc_info:
            await aiosmtplib.send(build_message(), **kwargs)
        assert exc_info.value.code == 530
    assert server.messages == []


@pytest.mark.asyncio
async def test_untrusted_certificate_is_rejected_by_default() -> None:
    async with SmtpServer(security="ssl") as server:
        kwargs = smtp_kwargs(server)
        del kwargs["cert_bundle"]  # the system CA bundle doesn't know our throwaway CA
        with pytest.raises(aiosmtplib.SMTPConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await aiosmtplib.send(build_message(), **kwargs)


@pytest.mark.asyncio
async def test_auth_is_required_before_mail() -> None:
    async with SmtpServer() as server:
        anonymous = smtp_kwargs(server) | {"username": None, "password": None}
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as exc_info:
            await aiosmtplib.send(build_message(), **anonymous)
    assert exc_info.value.code == 530


@pytest.mark.asyncio
async def test_server_without_auth_accepts_anonymous_mail() -> None:
    async with SmtpServer(username=None) as server:
        msg = build_message(html=False)
        await aiosmtplib.send(msg, hostname=server.host, port=server.port, start_tls=False)
    assert server.messages[0].auth_user is None
    assert server.messages[0].html is None


@pytest.mark.asyncio
async def test_rejected_recipient_and_failing_data() -> None:
    async with SmtpServer(reject_recipients=["bob@example.org"]) as server:
        # Some recipients refused: aiosmtplib still sends, and reports the refusals per address.
        errors, _ = await aiosmtplib.send(build_message(), **smtp_kwargs(server))
        assert set(errors) == {"bob@example.org"}
        assert errors["bob@example.org"].code == 550
        assert "bob@example.org" not in server.messages[0].rcpt_tos

        # All recipients refused: an exception instead.
        msg = build_message()
        for header in ("To", "Cc", "Bcc"):
            del msg[header]
        msg["To"] = "bob@example.org"
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await aiosmtplib.send(msg, **smtp_kwargs(server))

        server.data_response = "451 4.3.0 Try again later"
        with pytest.raises(aiosmtplib.SMTPDataError) as exc_info:
            await aiosmtplib.send(build_message(), **smtp_kwargs(server))
        assert exc_info.value.code == 451
    assert len(server.messages) == 1


def test_sync_use_with_smtplib_and_fixture(smtp_server: SmtpServer) -> None:
    # Anything that speaks SMTP works; non-ASCII credentials need aiosmtplib (smtplib's AUTH is ASCII-only).
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.login(DEFAULT_USERNAME, DEFAULT_PASSWORD)
        client.sendmail("a@example.test", ["b@example.test"], b"Subject: sync\r\n\r\nhello\r\n")
    assert smtp_server.wait_for_messages(1)[0].subject == "sync"


@pytest.mark.asyncio
async def test_non_ascii_credentials_and_extra_users() -> None:
    tricky = SmtpServer(username="jürgen@例え.test", password='pä ss:"\\w0rd', users={"x@y.z": "pw"})
    async with tricky as server:
        await aiosmtplib.send(build_message(), **smtp_kwargs(server))
        other_user = smtp_kwargs(server) | {"username": "x@y.z", "password": "pw"}
        await aiosmtplib.send(build_message(), **other_user)
    assert [m.auth_user for m in server.messages] == ["jürgen@例え.test", "x@y.z"]


@pytest.mark.asyncio
async def test_wait_for_messages_and_on_message_callback() -> None:
    seen: list[ReceivedMessage] = []
    async with SmtpServer(on_message=seen.append) as server:
        task = asyncio.create_task(aiosmtplib.send(build_message(), **smtp_kwargs(server)))
        [received] = await server.wait_for_messages_async(1, timeout=10)
        await task
        with pytest.raises(TimeoutError):
            server.wait_for_messages(2, timeout=0.05)
    assert seen == [received]


def test_parallel_servers_get_distinct_ports_and_stop_cleanly() -> None:
    before = threading.active_count()
    servers = [SmtpServer(security=s).start() for s in SECURITIES * 3]
    try:
        assert len({s.port for s in servers}) == len(servers)
    finally:
        for s in servers:
            s.stop()
    assert threading.active_count() == before
    # A stopped server really is gone.
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(servers[0].host, servers[0].port, timeout=2)
    # ...and can be started again (fresh port).
    with servers[0] as again:
        assert again.port


def test_client_context_verifies_hostname() -> None:
    with SmtpServer(security="ssl") as server:
        assert server.tls is not None
        ctx = server.tls.client_context()
        with smtplib.SMTP_SSL(server.host, server.port, context=ctx, timeout=10) as client:
            client.login(DEFAULT_USERNAME, DEFAULT_PASSWORD)
        # The cert names localhost/127.0.0.1/::1 only.
        with (
            socket.create_connection((server.host, server.port), timeout=10) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            ctx.wrap_socket(raw, server_hostname="mail.example.com")
