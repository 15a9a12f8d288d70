"""ImapServer (a real dovecot), driven by aioimaplib as the Hermes email gateway should drive it.

The helpers at the top (`imap_connect`, `starttls`, `search_uids`, `parse_fetch`) are the reference for the
gateway: aioimaplib 2.0 leaves STARTTLS, quoting and response parsing to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

import aioimaplib
import pytest

from tests.fakes import mail
from tests.fakes.mail import DEFAULT_PASSWORD, DEFAULT_USERNAME, ImapServer, ImapUser, ensure_dovecot

Security = Literal["none", "starttls", "ssl"]


# ----------------------------------------------------------------------------------------------------------
# Reference client code
# ----------------------------------------------------------------------------------------------------------


async def starttls(client: aioimaplib.IMAP4, context: ssl.SSLContext, server_hostname: str) -> None:
    """Upgrade a plain connection. aioimaplib 2.0.3 knows the STARTTLS command but has no method for it."""
    proto = client.protocol
    if "STARTTLS" not in proto.capabilities:  # filled from the greeting's CAPABILITY
        raise ConnectionError("server does not offer STARTTLS")
    command = aioimaplib.Command("STARTTLS", proto.new_tag(), loop=proto.loop)
    response = await asyncio.wait_for(proto.execute(command), client.timeout)
    if response.result != "OK":
        raise ConnectionError(f"STARTTLS refused: {response.lines}")
    loop = asyncio.get_running_loop()
    # start_tls() hands back a new transport and does not call connection_made(): swap it in ourselves.
    proto.transport = await loop.start_tls(proto.transport, proto, context, server_hostname=server_hostname)
    await asyncio.wait_for(proto.capability(), client.timeout)  # RFC 3501: forget pre-TLS capabilities


async def imap_connect(
    host: str, port: int, security: Security, context: ssl.SSLContext | None = None, timeout: float = 10
) -> aioimaplib.IMAP4:
    """Connected, greeted, not logged in. Must be called inside a running loop (IMAP4() starts connecting)."""
    if security == "ssl":
        client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(host, port, timeout=timeout, ssl_context=context)
    else:
        client = aioimaplib.IMAP4(host, port, timeout=timeout)
    # Connection refused / TLS handshake / certificate errors surface here, not in the constructor.
    await client.wait_hello_from_server()
    if security == "starttls":
        await starttls(client, context or ssl.create_default_context(), host)
    return client


async def imap_logout(client: aioimaplib.IMAP4, timeout: float = 2) -> None:
    """LOGOUT, then close the connection and wait until it is really closed.

    aioimaplib's logout() returns as soon as the tagged OK arrives and never closes the transport itself;
    it relies on the server's EOF. With TLS (IMAPS or after STARTTLS) closing also takes a close_notify
    round trip. If the event loop stops before that finishes (end of a request, of a test) the socket leaks
    ("ResourceWarning: unclosed transport"). So: close explicitly and await connection_lost.
    """
    proto = client.protocol
    lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    previous_cb = proto.conn_lost_cb

    def on_lost(exc: Exception | None) -> None:
        if not lost.done():
            lost.set_result(None)
        if previous_cb is not None:
            previous_cb(exc)

    proto.conn_lost_cb = on_lost
    try:
        if proto.state not in (aioimaplib.LOGOUT, aioimaplib.CONNECTED):
            await client.logout()
    finally:
        transport = proto.transport
        if transport is not None and not transport.is_closing():
            transport.close()
        if transport is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost, timeout)


def quote_mailbox(name: str) -> str:
    """aioimaplib's select()/status()/append() send the mailbox name verbatim: quote it (and mUTF-7 it)."""
    return str(aioimaplib.quoted(ImapServer.utf7_imap_encode(name)))


async def search_uids(client: aioimaplib.IMAP4, *criteria: str) -> list[int]:
    """UID SEARCH -> UIDs. Strings in criteria must already be quoted (aioimaplib.quoted)."""
    response = await client.uid_search(*criteria)
    if response.result != "OK":
        raise RuntimeError(f"SEARCH failed: {response.result} {response.lines}")
    # lines: [b"<uids separated by spaces>" ("* SEARCH" stripped; b"" when none), b"Search completed (...)"]
    return [int(n) for line in response.lines[:-1] for n in line.split() if n.isdigit()]


@dataclass
class Fetched:
    uid: int
    flags: list[str]
    raw: bytes


_FETCH_START = re.compile(rb"^\d+ FETCH \(")


def parse_fetch(lines: list[bytes | bytearray]) -> list[Fetched]:
    """Parse a FETCH response with (at most) one literal per message, e.g. (UID FLAGS BODY.PEEK[]).

    aioimaplib hands back, per message: b'1 FETCH (UID 1 FLAGS (\\Seen) BODY[] {107}' (bytes, ends with
    the literal's size), bytearray(<the 107 bytes>), then b')' - or b' FLAGS (\\Seen))' when the server puts
    items after the literal. The tagged completion text is the last line. No literal -> one bytes line.
    """
    out: list[Fetched] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if isinstance(line, bytearray) or not _FETCH_START.match(line):
            i += 1
            continue
        meta, raw = bytes(line), b""
        if line.endswith(b"}") and i + 1 < len(lines) and isinstance(lines[i + 1], bytearray):
            raw = bytes(lines[i + 1])
            i += 1
            nxt = lines[i + 1] if i + 1 < len(lines) else None
            if isinstance(nxt, bytes) and nxt.endswith(b")") and not _FETCH_START.match(nxt):
                meta += nxt
                i += 1
        uid = re.search(rb"\bUID (\d+)", meta)
        flags = re.search(rb"\bFLAGS \(([^)]*)\)", meta)
        out.append(
            Fetched(
                uid=int(uid.group(1)) if uid else -1,
                flags=flags.group(1).decode().split() if flags else [],
                raw=raw,
            )
        )
        i += 1
    return out


def parse_email(raw: bytes) -> EmailMessage:
    """IMAP serves messages with CRLF line ends; the email package keeps them inside 7bit/8bit text parts
    (get_content() would return "...\r\n"), so normalise first. policy.default gives EmailMessage with
    get_body()/get_content() and decoded (RFC 2047) headers."""
    msg = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


# ----------------------------------------------------------------------------------------------------------
# Helpers for these tests
# ----------------------------------------------------------------------------------------------------------


def make_message(
    subject: str,
    body: str,
    sender: str = "Bob <bob@example.com>",
    html: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = DEFAULT_USERNAME
    msg["Subject"] = subject
    msg["Message-ID"] = email.utils.make_msgid(domain="example.com")
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes(policy=email.policy.SMTP)


async def logged_in(server: ImapServer, user: ImapUser, security: Security = "none") -> aioimaplib.IMAP4:
    ctx = server.tls.client_context() if server.tls else None
    client = await imap_connect(server.host, server.port_for(security), security, ctx)
    response = await client.login(user.name, user.password)
    assert response.result == "OK", response
    return client


# ----------------------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("security", ["none", "starttls", "ssl"])
async def test_login_select_search_fetch(
    imap_server: ImapServer,
    imap_user: ImapUser,
    security: Security,
) -> None:
    uid1 = imap_server.deliver(imap_user.name, make_message("Invoice x-42", "Please pay the invoice."))
    uid2 = imap_server.deliver(
        imap_user.name,
        make_message("Lunch?", "Pizza at noon — d'accord?", sender="carol@example.org", html="<b>Pizza</b>"),
    )
    uid3 = imap_server.deliver(
        imap_user.name, make_message("Re: Invoice", "Paid.", sender="dave@example.net"), seen=True
    )
    assert (uid1, uid2, uid3) == (1, 2, 3)

    client = await logged_in(imap_server, imap_user, security)
    try:
        selected = await client.select("INBOX")
        assert selected.result == "OK"
        assert b"3 EXISTS" in selected.lines
        assert any(line.startswith(b"OK [UIDVALIDITY ") for line in selected.lines)

        q = aioimaplib.quoted
        assert await search_uids(client, "ALL") == [1, 2, 3]
        assert await search_uids(client, "SUBJECT", q("invoice")) == [1, 3]  # case-insensitive substring
        assert await search_uids(client, "FROM", q("carol@example.org")) == [2]
        assert await search_uids(client, "TEXT", q("pay the")) == [1]
        assert await search_uids(client, "BODY", q("d'accord")) == [2]  # decoded body, non-ASCII around it
        assert await search_uids(client, "UNSEEN") == [1, 2]
        assert await search_uids(client, "SEEN", "FROM", q("dave")) == [3]  # criteria AND together
        assert await search_uids(client, "OR", "FROM", q("carol"), "FROM", q("dave")) == [2, 3]
        assert await search_uids(client, "SUBJECT", q("nothing like this")) == []
        assert await search_uids(client, "UID", "2:*") == [2, 3]

        response = await client.uid("fetch", "2", "(UID FLAGS BODY.PEEK[])")
        assert response.result == "OK"
        [fetched] = parse_fetch(response.lines)
        assert fetched.uid == 2
        assert "\\Seen" not in fetched.flags  # BODY.PEEK[] doesn't mark it read
        parsed = parse_email(fetched.raw)
        assert parsed["Subject"] == "Lunch?"
        plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
        assert plain is not None
        assert html is not None
        assert plain.get_content() == "Pizza at noon — d'accord?\n"
        assert html.get_content() == "<b>Pizza</b>\n"

        # Several messages at once; RFC822 is BODY[] without PEEK, so it sets \Seen.
        response = await client.uid("fetch", "1:3", "(UID FLAGS RFC822)")
        rows = parse_fetch(response.lines)
        assert [r.uid for r in rows] == [1, 2, 3]
        assert all("\\Seen" in r.flags for r in rows)
        assert all(r.raw.startswith(b"From: ") or b"\r\nSubject: " in r.raw for r in rows)

        # A UID that doesn't exist is not an error: just no FETCH line.
        missing = await client.uid("fetch", "99", "(UID BODY.PEEK[])")
        assert missing.result == "OK"
        assert parse_fetch(missing.lines) == []
    finally:
        await imap_logout(client)
    [login] = imap_server.logins(imap_user.name, min_count=1)
    assert login.tls is (security != "none")


@pytest.mark.asyncio
async def test_mark_seen_and_header_only_fetch(imap_server: ImapServer, imap_user: ImapUser) -> None:
    uid = imap_server.deliver(imap_user.name, make_message("Flag me", "body"))
    client = await logged_in(imap_server, imap_user)
    try:
        await client.select()
        items = "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT FROM DATE)])"
        response = await client.uid("fetch", str(uid), items)
        [row] = parse_fetch(response.lines)
        assert row.raw.startswith(b"From: Bob <bob@example.com>\r\nSubject: Flag me\r\n")
        assert "\\Seen" not in row.flags  # PEEK left it unread

        stored = await client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Seen)")
        assert stored.result == "OK"
    finally:
        await imap_logout(client)
    [message] = imap_server.messages(imap_user.name)
    assert message.flags == {"\\Seen"}
    assert message.message["Subject"] == "Flag me"


@pytest.mark.asyncio
async def test_bad_password_and_unknown_user_are_refused(
    imap_server: ImapServer,
    imap_user: ImapUser,
) -> None:
    client = await imap_connect(imap_server.host, imap_server.port, "none")
    try:
        started = time.monotonic()
        # Quirk: aioimaplib doesn't raise on a failed LOGIN, it returns result "NO".
        response = await client.login(imap_user.name, imap_user.password + "x")
        assert response.result == "NO"
        assert b"[AUTHENTICATIONFAILED]" in response.lines[0]
        assert client.get_state() == "NONAUTH"
        response = await client.login("nobody-here@example.test", "whatever")
        assert response.result == "NO"
        # The config disables dovecot's per-IP auth penalty, so failures cost ~0.5 s each, not 2-15 s.
        assert time.monotonic() - started < 3
        # Same connection can still log in properly afterwards.
        assert (await client.login(imap_user.name, imap_user.password)).result == "OK"
    finally:
        await imap_logout(client)


@pytest.mark.asyncio
async def test_default_account_and_tricky_passwords(imap_server: ImapServer) -> None:
    # The default account (shared with SmtpServer's default): password with spaces and a colon.
    client = await imap_connect(imap_server.host, imap_server.port, "none")
    assert (await client.login(DEFAULT_USERNAME, DEFAULT_PASSWORD)).result == "OK"
    await imap_logout(client)
    # aioimaplib quotes the password (escaping " and \), but NOT the user name: keep user names atom-safe
    # (an e-mail address is) or pass aioimaplib.quoted(user).
    for password in ['with "quotes" and \\backslash', "ünïcödé pässwörd"]:
        user = imap_server.add_user(f"tricky{abs(hash(password))}@example.test", password)
        client = await imap_connect(imap_server.host, imap_server.port, "none")
        assert (await client.login(user.name, user.password)).result == "OK"
        await imap_logout(client)


@pytest.mark.asyncio
async def test_users_change_live(imap_server: ImapServer) -> None:
    user = imap_server.new_user("live")
    client = await imap_connect(imap_server.host, imap_server.port, "none")
    assert (await client.login(user.name, user.password)).result == "OK"
    await imap_logout(client)

    imap_server.add_user(user.name, "changed password")  # same length-ish, same second: still picked up
    client = await imap_connect(imap_server.host, imap_server.port, "none")
    assert (await client.login(user.name, user.password)).result == "NO"
    assert (await client.login(user.name, "changed password")).result == "OK"
    await imap_logout(client)

    imap_server.remove_user(user.name)
    client = await imap_connect(imap_server.host, imap_server.port, "none")
    assert (await client.login(user.name, "changed password")).result == "NO"
    await imap_logout(client)


@pytest.mark.asyncio
async def test_folders_append_and_unicode_search(imap_server: ImapServer, imap_user: ImapUser) -> None:
    imap_server.deliver(imap_user.name, make_message("Résumé attached", "Voilà"), folder="Archive/2024 Q1")
    imap_server.deliver(imap_user.name, make_message("Other", "x"), folder="Écoles")
    assert {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive/2024 Q1", "Écoles"} <= set(
        imap_server.folders(imap_user.name)
    )

    client = await logged_in(imap_server, imap_user)
    try:
        # Quirk: select() sends the name as-is, so "Archive/2024 Q1" must be quoted.
        assert (await client.select("Archive/2024 Q1")).result != "OK"  # dovecot: NO, no "Archive/2024"
        assert (await client.select(quote_mailbox("Archive/2024 Q1"))).result == "OK"
        # Non-ASCII criteria go as UTF-8 in a quoted string with CHARSET utf-8 (aioimaplib's default charset).
        # dovecot accepts that; strict RFC 3501 servers want a literal, which aioimaplib can't send in SEARCH.
        assert await search_uids(client, "SUBJECT", aioimaplib.quoted("Résumé")) == [1]
        assert await search_uids(client, "TEXT", aioimaplib.quoted("voilà")) == [1]

        assert (await client.select(quote_mailbox("Écoles"))).result == "OK"
        assert await search_uids(client, "ALL") == [1]

        # Saving a sent copy: APPEND (aioimaplib sends the literal itself).
        appended = await client.append(make_message("Sent copy", "hi"), mailbox="Sent", flags=r"(\Seen)")
        assert appended.result == "OK"
        assert any(b"APPENDUID" in line for line in appended.lines)  # [APPENDUID <uidvalidity> <uid>]
    finally:
        await imap_logout(client)
    [sent] = imap_server.messages(imap_user.name, "Sent")
    assert sent.flags == {"\\Seen"}
    assert sent.message["Subject"] == "Sent copy"


@pytest.mark.asyncio
async def test_imaps_rejects_untrusted_certificate(imap_server: ImapServer) -> None:
    assert imap_server.ssl_port is not None
    with pytest.raises(ssl.SSLCertVerificationError):
        await imap_connect(imap_server.host, imap_server.ssl_port, "ssl", ssl.create_default_context())


@pytest.mark.asyncio
async def test_new_user_isolation(imap_server: ImapServer) -> None:
    a, b = imap_server.new_user(), imap_server.new_user()
    assert a.name != b.name
    imap_server.deliver(a.name, make_message("for a", "x"))
    client = await logged_in(imap_server, b)
    try:
        await client.select()
        assert await search_uids(client, "ALL") == []
    finally:
        await imap_logout(client)


def test_deliver_to_unknown_user_fails(imap_server: ImapServer) -> None:
    with pytest.raises(KeyError):
        imap_server.deliver("ghost@example.test", b"Subject: x\r\n\r\ny\r\n")


def _group_alive(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def test_parallel_instances_start_fast_and_leave_nothing_behind() -> None:
    ensure_dovecot()
    started = time.monotonic()
    servers = [ImapServer().start() for _ in range(4)]
    elapsed = time.monotonic() - started
    pids = [s._proc.pid for s in servers if s._proc is not None]
    bases = [s.base for s in servers]
    try:
        assert len({s.port for s in servers}) == 4
        for s in servers:
            uid = s.deliver(s.username or "", b"Subject: hi\r\n\r\nx\r\n")
            assert uid == 1
        assert elapsed < 4, f"4 dovecots took {elapsed:.2f}s"
    finally:
        for s in servers:
            s.stop()
    for pid, base, s in zip(pids, bases, servers, strict=True):
        assert not _group_alive(pid)
        assert base is not None
        assert not base.exists()
        with pytest.raises(ConnectionRefusedError), socket.create_connection((s.host, s.port), timeout=1):
            pass


@pytest.mark.asyncio
async def test_async_context_manager_and_restart() -> None:
    server = ImapServer(username="solo@example.test", password="pw")
    async with server:
        client = await imap_connect(server.host, server.port, "none")
        assert (await client.login("solo@example.test", "pw")).result == "OK"
        await imap_logout(client)
    assert server.base is None
    async with server:  # restart: fresh temp dir, fresh port, users from the constructor again
        assert server.port
        assert server.users == {"solo@example.test": "pw"}


def test_ensure_dovecot_script_is_idempotent_and_fast() -> None:
    script = Path(mail.ENSURE_DOVECOT_SCRIPT)
    started = time.monotonic()
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 5  # already installed: a few checks, no apt


def test_missing_dovecot_that_cannot_be_installed_raises(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    failing = tmp_path / "ensure.sh"
    failing.write_text("echo 'no apt here' >&2\nexit 1\n")
    monkeypatch.setattr(mail, "DOVECOT_BIN", str(tmp_path / "no-dovecot"))
    monkeypatch.setattr(mail, "ENSURE_DOVECOT_SCRIPT", failing)
    monkeypatch.setattr(mail, "_dovecot_ready", False)
    with pytest.raises(mail.DovecotUnavailable, match="no apt here"):
        mail.ensure_dovecot()
    # ImapServer.fixture() turns this into pytest.skip(<that message>); start() raises it as is.
    with pytest.raises(mail.DovecotUnavailable):
        ImapServer().start()


def test_dovecot_dies_with_its_test_process() -> None:
    """Even if the test process is SIGKILLed (or pytest-timeout calls os._exit), no dovecot is left over."""
    code = (
        "import os, signal, sys\n"
        f"sys.path.insert(0, {str(Path(mail.__file__).parents[2])!r})\n"
        "from tests.fakes.mail import ImapServer\n"
        "s = ImapServer().start()\n"
        "print(s._proc.pid, s.base, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    pgid_text, base = done.stdout.split()
    pgid = int(pgid_text)
    try:
        deadline = time.monotonic() + 10
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _group_alive(pgid)
    finally:
        shutil.rmtree(base, ignore_errors=True)  # SIGKILL left no chance to clean the temp dir


def test_port_taken_meanwhile_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """The free port is picked before dovecot binds it; if someone grabs it in between, start() retries."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        real_free_port = mail._free_port
        ports = iter([taken])
        monkeypatch.setattr(mail, "_free_port", lambda: next(ports, None) or real_free_port())
        with ImapServer() as server:
            assert server.port != taken
            assert server.deliver(server.username or "", b"Subject: x\r\n\r\ny\r\n") == 1
