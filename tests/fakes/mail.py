"""Real mail servers for integration tests: an aiosmtpd SMTP server and a private dovecot IMAP server.

Both are *real* protocol implementations (no mocks), bound to 127.0.0.1 on free ports, isolated in their
own temp dirs, so many can run side by side (pytest-xdist, repeated fixtures) without leaking processes.

    with SmtpServer(security="starttls") as smtp, ImapServer() as imap:
        ...  # point the code under test at smtp.host/smtp.port and imap.host/imap.port
        smtp.messages[0].subject
        uid = imap.deliver(imap.username, b"Subject: hi\\r\\n\\r\\nbody\\r\\n")

Both default to the same account (DEFAULT_USERNAME / DEFAULT_PASSWORD) because Hermes' email connection
uses one username/password pair for SMTP and IMAP.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import email
import email.policy
import grp
import hashlib
import ipaddress
import itertools
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal, Self

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USERNAME",
    "DovecotUnavailable",
    "ImapLogin",
    "ImapServer",
    "ImapUser",
    "ReceivedMessage",
    "SmtpSecurity",
    "SmtpServer",
    "StoredMessage",
    "TlsFiles",
    "ensure_dovecot",
    "tls_files",
]

DEFAULT_USERNAME = "agent@example.test"
# Shaped like a Gmail app password (spaces!) plus a colon: both break naive quoting/encoding.
DEFAULT_PASSWORD = "abcd efgh ijkl:mnop"

SmtpSecurity = Literal["none", "starttls", "ssl"]

_REPO_ROOT = Path(__file__).resolve().parents[2]
ENSURE_DOVECOT_SCRIPT = _REPO_ROOT / "scripts" / "ensure-dovecot.sh"
DOVECOT_BIN = os.environ.get("HERMES_TEST_DOVECOT", "/usr/sbin/dovecot")
DOVEADM_BIN = os.environ.get("HERMES_TEST_DOVEADM", "/usr/bin/doveadm")

_LOCALHOST = "127.0.0.1"


# ----------------------------------------------------------------------------------------------------------
# TLS material
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server cert (localhost, 127.0.0.1, ::1) signed by it, as PEM files.

    A separate CA (rather than one self-signed leaf) keeps verification working under strict X.509
    checks (Python 3.13's VERIFY_X509_STRICT rejects a self-signed leaf used as its own trust anchor).
    Clients that want to verify load `ca_path` (e.g. `SSL_CERT_FILE=ca_path` for code that uses the
    default context); clients that don't can simply disable verification.
    """

    ca_path: Path
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this CA (hostname checks stay on)."""
        return ssl.create_default_context(cafile=str(self.ca_path))


def _generate_tls_files(directory: Path) -> TlsFiles:
    # Imported lazily: only TLS modes pay for it.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    # EC keys: generation is ~instant, unlike RSA-2048 (~50-200 ms), and every TLS stack here accepts P-256.
    now = dt.datetime.now(dt.UTC)
    not_before, not_after = now - dt.timedelta(days=1), now + dt.timedelta(days=365)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hermes test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_path.touch(mode=0o600)
    files.key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@lru_cache(maxsize=1)
def tls_files() -> TlsFiles:
    """The process-wide test CA + server cert (generated once, deleted at interpreter exit)."""
    directory = Path(tempfile.mkdtemp(prefix="hermes-test-tls-"))
    weakref.finalize(tls_files, shutil.rmtree, directory, True)
    return _generate_tls_files(directory)


def _free_port() -> int:
    # Only used for dovecot, which must be told a port in its config; see ImapServer._spawn for the retry
    # that covers the (small) window in which another process could grab the port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOCALHOST, 0))
        return int(sock.getsockname()[1])


# ----------------------------------------------------------------------------------------------------------
# SMTP
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthAttempt:
    mechanism: str
    login: str
    success: bool


@dataclass(frozen=True)
class ReceivedMessage:
    """One message accepted by SmtpServer (after DATA)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # raw message as received (CRLF line ends, dot-unstuffed)
    auth_user: str | None  # login name the session authenticated as
    tls: bool  # whether the session was encrypted (STARTTLS or implicit TLS)
    peer: Any = None

    @cached_property
    def message(self) -> EmailMessage:
        """The parsed message, with line ends normalised to "\n" (so `.text` compares to Python strings)."""
        msg = email.message_from_bytes(self.data.replace(b"\r\n", b"\n"), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    @property
    def subject(self) -> str | None:
        value = self.message["Subject"]
        return None if value is None else str(value)

    def header(self, name: str) -> str | None:
        value = self.message[name]
        return None if value is None else str(value)

    def _addresses(self, name: str) -> list[str]:
        return [addr for _, addr in getaddresses([str(v) for v in self.message.get_all(name, [])]) if addr]

    @property
    def to(self) -> list[str]:
        return self._addresses("To")

    @property
    def cc(self) -> list[str]:
        return self._addresses("Cc")

    @property
    def bcc(self) -> list[str]:
        """Envelope recipients absent from To/Cc: how Bcc is visible to a server (the header must be gone)."""
        visible = {a.lower() for a in self.to + self.cc}
        return [r for r in self.rcpt_tos if r.lower() not in visible]

    @property
    def text(self) -> str | None:
        part = self.message.get_body(preferencelist=("plain",))
        return None if part is None else str(part.get_content())

    @property
    def html(self) -> str | None:
        part = self.message.get_body(preferencelist=("html",))
        return None if part is None else str(part.get_content())


class _SmtpHandler:
    """aiosmtpd handler + authenticator; runs on the server's loop thread."""

    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    # authenticator protocol: (server, session, envelope, mechanism, auth_data) -> AuthResult
    def __call__(
        self,
        smtp: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        ok = self._server.users.get(login) == password
        with self._server._cond:
            self._server.auth_attempts.append(AuthAttempt(mechanism, login, ok))
        # handled=False + no message -> aiosmtpd answers "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self._server.reject_recipients:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        forced = self._server.data_response
        if forced is not None:
            return forced
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        transport = smtp.transport
        received = ReceivedMessage(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(raw),
            auth_user=session.auth_data if session.authenticated else None,
            # get_extra_info("ssl_object") covers both implicit TLS and post-STARTTLS transports; aiosmtpd's
            # own session.ssl is only set after STARTTLS.
            tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
            peer=session.peer,
        )
        self._server._record(received)
        return "250 2.0.0 Message accepted for delivery"


class _DropLoginDataWarning(logging.Filter):
    # aiosmtpd 1.4 itself sets the deprecated Session.login_data on every successful AUTH and then logs a
    # deprecation warning about it, once per login. Pure noise in test output.
    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_DropLoginDataWarning())


class _SMTP(SMTP):
    """aiosmtpd's SMTP, minus a per-connection warning.

    With auth_required=True and auth_require_tls=False aiosmtpd warns (warnings.warn + log) on *every*
    connection; that combination is deliberate in modes "none" and "ssl" (aiosmtpd can't see implicit TLS).
    The warning would break runs with -W error, and warnings.catch_warnings isn't thread-safe, so set the
    flag after construction instead. `_auth_required` is only read when MAIL is processed.
    """

    def __init__(self, *args: Any, auth_required: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, auth_required=False, **kwargs)
        self._auth_required = auth_required


class SmtpServer:
    """A real SMTP submission server (aiosmtpd) on 127.0.0.1:<free port>, in a background thread.

    security: "none" (plain, AUTH allowed in clear), "starttls" (STARTTLS required before AUTH/MAIL, like
    port 587), "ssl" (implicit TLS, like port 465). With a username (default) AUTH PLAIN/LOGIN is required
    before MAIL; bad credentials get 535. Received messages land in `.messages`.
    """

    def __init__(
        self,
        *,
        security: SmtpSecurity = "none",
        username: str | None = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        users: Mapping[str, str] | None = None,
        reject_recipients: Iterable[str] = (),
        on_message: Callable[[ReceivedMessage], None] | None = None,
        hostname: str = "localhost",
    ) -> None:
        if security not in ("none", "starttls", "ssl"):
            raise ValueError(f"security must be none, starttls or ssl, not {security!r}")
        self.security: SmtpSecurity = security
        self.host = _LOCALHOST
        self.port = 0
        self.username = username
        self.password = password
        self.users: dict[str, str] = dict(users or {})
        if username is not None:
            self.users[username] = password
        self.auth_required = bool(self.users)
        self.reject_recipients = {r.lower() for r in reject_recipients}
        # Set to e.g. "451 4.3.0 Try again later" / "552 5.3.4 Message too big" to fail every DATA.
        self.data_response: str | None = None
        self.on_message = on_message
        self.hostname = hostname  # explicit: aiosmtpd's default calls socket.getfqdn(), which can stall
        self.tls: TlsFiles | None = tls_files() if security != "none" else None
        # One server context for all connections (loading the cert per connection is wasted work).
        self._ssl_context = self.tls.server_context() if self.tls is not None else None
        self.messages: list[ReceivedMessage] = []
        self.auth_attempts: list[AuthAttempt] = []
        self._cond = threading.Condition()
        self._handler = _SmtpHandler(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._protocols: weakref.WeakSet[SMTP] = weakref.WeakSet()

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            return self
        # Bind here, in the caller's thread, and hand the socket to the loop: the port is ours before
        # start() returns, so there is no pick-then-bind race with parallel servers.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((_LOCALHOST, 0))
        sock.listen(128)
        sock.setblocking(False)
        self.port = int(sock.getsockname()[1])
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                ssl_ctx = self._ssl_context if self.security == "ssl" else None
                create = loop.create_server(self._make_protocol, sock=sock, ssl=ssl_ctx)
                self._server = loop.run_until_complete(create)
            except Exception as exc:  # surfaced to start()'s caller below
                error.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"smtp-fake-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10) and not error:
            error.append(TimeoutError("event loop thread did not come up within 10 s"))
        if error:
            loop.call_soon_threadsafe(loop.stop)  # in case it's still coming up
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                loop.close()
            sock.close()
            self._thread = self._loop = None
            raise RuntimeError(f"SmtpServer failed to start: {error[0]!r}") from error[0]
        return self

    def _make_protocol(self) -> SMTP:
        starttls = self.security == "starttls"
        proto = _SMTP(
            self._handler,
            hostname=self.hostname,
            loop=self._loop,
            enable_SMTPUTF8=True,
            tls_context=self._ssl_context if starttls else None,
            require_starttls=starttls,
            authenticator=self._handler if self.auth_required else None,
            auth_required=self.auth_required,
            # aiosmtpd only knows about TLS it negotiated itself (STARTTLS); with implicit TLS it would
            # refuse AUTH as "not encrypted", so only require TLS for AUTH in starttls mode.
            auth_require_tls=starttls,
        )
        self._protocols.add(proto)
        return proto

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for proto in list(self._protocols):
            if proto.transport is not None:
                proto.transport.close()
        if self._server is not None:
            await self._server.wait_closed()
        await asyncio.sleep(0)  # let connection_lost callbacks run
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            self._loop = self._thread = self._server = None
            self._protocols.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()  # a few ms of blocking: cheaper than a thread hop

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    @classmethod
    def fixture(cls, *, scope: str = "function", name: str | None = None, **kwargs: Any) -> Any:
        """A pytest fixture yielding a started server: `smtp_server = SmtpServer.fixture(security="ssl")`."""
        import pytest

        @pytest.fixture(scope=scope, name=name)  # type: ignore[call-overload, untyped-decorator]
        def _fixture() -> Iterator[SmtpServer]:
            with cls(**kwargs) as server:
                yield server

        return _fixture

    # -- results ----------------------------------------------------------------------------------

    def _record(self, message: ReceivedMessage) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()
        if self.on_message is not None:
            self.on_message(message)

    def wait_for_messages(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least `count` messages arrived (for code that sends in the background)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"expected {count} message(s), got {len(self.messages)} within {timeout}s")
            return list(self.messages)

    async def wait_for_messages_async(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMessage]:
        return await asyncio.to_thread(self.wait_for_messages, count, timeout)

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()
            self.auth_attempts.clear()

    def __repr__(self) -> str:
        return f"<SmtpServer {self.security} {self.host}:{self.port} messages={len(self.messages)}>"


# ----------------------------------------------------------------------------------------------------------
# IMAP (dovecot)
# ----------------------------------------------------------------------------------------------------------


class DovecotUnavailable(RuntimeError):
    """dovecot is not installed and scripts/ensure-dovecot.sh could not install it."""


_ensure_lock = threading.Lock()
_dovecot_ready = False  # cached positive answer: dpkg-query costs ~10 ms per server start otherwise


def _dovecot_installed() -> bool:
    # The binaries alone aren't enough: they appear while a (concurrent) apt-get is still unpacking, long
    # before the package is configured. Ask dpkg when the binaries are the packaged ones.
    if not (os.access(DOVECOT_BIN, os.X_OK) and os.access(DOVEADM_BIN, os.X_OK)):
        return False
    if DOVECOT_BIN != "/usr/sbin/dovecot" or not shutil.which("dpkg-query"):
        return True
    status = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", "dovecot-imapd"], capture_output=True, text=True, check=False
    )
    return "install ok installed" in status.stdout


def ensure_dovecot() -> None:
    """Install dovecot via scripts/ensure-dovecot.sh when missing; raise DovecotUnavailable if that fails."""
    global _dovecot_ready
    with _ensure_lock:
        if _dovecot_ready or _dovecot_installed():
            _dovecot_ready = True
            return
        if not ENSURE_DOVECOT_SCRIPT.exists():
            raise DovecotUnavailable(f"{DOVECOT_BIN} missing and {ENSURE_DOVECOT_SCRIPT} not found")
        proc = subprocess.run(
            ["bash", str(ENSURE_DOVECOT_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
        )
        if proc.returncode != 0 or not _dovecot_installed():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
            raise DovecotUnavailable(
                f"dovecot unavailable: {ENSURE_DOVECOT_SCRIPT} exited {proc.returncode}\n" + "\n".join(tail)
            )
        _dovecot_ready = True


@dataclass(frozen=True)
class ImapUser:
    name: str
    password: str


@dataclass(frozen=True)
class ImapLogin:
    user: str
    method: str  # SASL mechanism dovecot used: LOGIN command -> "PLAIN"
    tls: bool  # STARTTLS or implicit TLS (dovecot logs "TLS"); False for cleartext ("secured" loopback)


@dataclass(frozen=True)
class StoredMessage:
    uid: int
    flags: frozenset[str]
    raw: bytes  # as dovecot stores it (LF line ends); IMAP FETCH serves it with CRLF

    @cached_property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


def _world_traversable(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))


def _utf7_imap_encode(name: str) -> str:
    """RFC 3501 modified UTF-7, for naming non-ASCII folders in tests that speak raw IMAP."""
    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            b64 = base64.b64encode("".join(buf).encode("utf-16-be")).decode().rstrip("=").replace("/", ",")
            out.append(f"&{b64}-")
            buf.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


class ImapServer:
    """A real, private dovecot (2.3) on 127.0.0.1:<free port>, from a temp dir with its own config.

    Runs in the foreground (`dovecot -F -c <tmp>/dovecot.conf`) as its own process group: no system
    config, no system service, nothing outside the temp dir. Users live in passwd-files (one per user,
    picked up live); mail is Maildir under the temp dir.

    tls=True adds an implicit-TLS listener (`ssl_port`) and STARTTLS on `port`; plaintext LOGIN stays
    allowed on `port`. dovecot can't be made to *require* TLS here (it treats a client whose address equals
    the server's, i.e. any loopback client, as "secured"), so to assert that a client really used TLS,
    check `logins()`.
    """

    _counter = itertools.count(1)

    def __init__(
        self,
        *,
        username: str | None = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        users: Mapping[str, str] | None = None,
        tls: bool = False,
        debug: bool = False,
        startup_timeout: float = 15.0,
        tmp_root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.host = _LOCALHOST
        self.port = 0
        self.ssl_port: int | None = None
        self.username = username
        self.password = password
        self.tls_enabled = tls
        self.debug = debug
        self.startup_timeout = startup_timeout
        self._tmp_root = tmp_root
        self._initial_users = dict(users or {})
        if username is not None:
            self._initial_users[username] = password
        self.users: dict[str, str] = {}
        self.tls: TlsFiles | None = None
        self.base: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._greeting = ""
        self._lock = threading.RLock()  # serialises passwd-file writes and deliver()'s save+uid lookup
        # Whom mail processes run as. dovecot refuses uid 0 for mail access, so as root the mail files
        # belong to `nobody` (the master stays root and drops privileges as usual: auth -> dovecot,
        # login -> dovenull). As non-root everything, master included, runs as the current user.
        self._root = os.geteuid() == 0
        if self._root:
            nobody = pwd.getpwnam("nobody")
            self._mail_uid, self._mail_gid = nobody.pw_uid, nobody.pw_gid
        else:
            self._mail_uid, self._mail_gid = os.geteuid(), os.getegid()

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._proc is not None:
            return self
        ensure_dovecot()
        tmp_root = self._tmp_root
        if tmp_root is None and self._root and not _world_traversable(Path(tempfile.gettempdir())):
            tmp_root = "/tmp"  # e.g. TMPDIR under /root: dovecot's unprivileged processes couldn't get in
        base = Path(tempfile.mkdtemp(prefix="hermes-dovecot-", dir=tmp_root))
        self.base = base
        self._greeting = f"Hermes test dovecot {base.name} ready."
        try:
            # 0755/0644 so that, as root, dovecot's unprivileged auth (user dovecot) can read the passwd files
            # and mail processes (nobody) can reach their homes.
            base.chmod(0o755)
            (base / "home").mkdir()
            os.chown(base / "home", self._mail_uid, self._mail_gid)
            (base / "state").mkdir()
            if self.tls_enabled:
                src = tls_files()
                (base / "tls").mkdir(mode=0o700)
                self.tls = TlsFiles(base / "tls/ca.pem", base / "tls/server.pem", base / "tls/server.key")
                for a, b in zip(
                    (src.ca_path, src.cert_path, src.key_path),
                    (self.tls.ca_path, self.tls.cert_path, self.tls.key_path),
                    strict=True,
                ):
                    shutil.copyfile(a, b)
            (base / "users").mkdir()
            for name, password in self._initial_users.items():
                self._check_name(name)
                self._write_user(name, password)
            self.users = dict(self._initial_users)
            self._spawn()
        except BaseException:
            self.stop()
            raise
        return self

    def _config(self, port: int, ssl_port: int | None) -> str:
        assert self.base is not None
        base = self.base
        if self._root:
            users = "default_internal_user = dovecot\ndefault_login_user = dovenull\n"
            no_chroot = ""
        else:
            # Rootless dovecot: every service runs as us, and nothing may chroot or chown to other ids.
            me = pwd.getpwuid(os.geteuid()).pw_name
            group = grp.getgrgid(os.getegid()).gr_name
            users = f"default_internal_user = {me}\ndefault_login_user = {me}\n"
            users += f"default_internal_group = {group}\n"
            no_chroot = "  chroot =\n"
        if self.tls_enabled:
            assert self.tls is not None
            tls = f"ssl = yes\nssl_cert = <{self.tls.cert_path}\nssl_key = <{self.tls.key_path}\n"
        else:
            tls = "ssl = no\n"
        debug = ""
        if self.debug:
            debug = "auth_verbose = yes\nauth_debug = yes\nmail_debug = yes\nverbose_ssl = yes\n"
        return f"""# Generated by tests/fakes/mail.py: a private, throwaway dovecot {base}
instance_name = hermes-test-{base.name}
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = imap
listen = {_LOCALHOST}
# Unique greeting: start() checks it, so a port grabbed by someone else in the meantime isn't mistaken
# for ours.
login_greeting = {self._greeting}
{users}
# Plaintext LOGIN without TLS (tests connect in clear); 127.0.0.1 counts as "secured" anyway.
disable_plaintext_auth = no
auth_mechanisms = plain login
# Fast bad-password tests: no 2 s failure delay (dovecot still rounds a failure up to ~0.5 s, its failure
# timer's granularity) and, below, no anvil-auth-penalty socket, which disables the per-IP exponential
# penalty (2-15 s) that would otherwise hit every test sharing 127.0.0.1 after one failed login.
auth_failure_delay = 0
{tls}
first_valid_uid = {self._mail_uid}
last_valid_uid = {self._mail_uid}
first_valid_gid = {self._mail_gid}
last_valid_gid = {self._mail_gid}
passdb {{
  driver = passwd-file
  args = scheme=SHA256 username_format=%u {base}/users/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {base}/users/%u
  default_fields = uid={self._mail_uid} gid={self._mail_gid} home={base}/home/%u
}}
mail_location = maildir:~/Maildir
mail_fsync = never
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
protocol imap {{
  mail_max_userip_connections = 1000
}}
service anvil {{
{no_chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
{no_chroot}  inet_listener imap {{
    address = {_LOCALHOST}
    port = {port}
  }}
  inet_listener imaps {{
    address = {_LOCALHOST}
    port = {ssl_port or 0}
  }}
}}
{debug}"""

    def _spawn(self) -> None:
        assert self.base is not None
        conf = self.base / "dovecot.conf"
        last_error = ""
        for _attempt in range(5):
            port = _free_port()
            ssl_port = _free_port() if self.tls_enabled else None
            if ssl_port == port:
                continue
            conf.write_text(self._config(port, ssl_port))
            log_path = self.base / "dovecot.log"
            log_path.unlink(missing_ok=True)
            self.port, self.ssl_port = port, ssl_port
            if self._launch(conf):
                return
            last_error = self.log_text()
            self._terminate()
            if "Address already in use" not in last_error:
                break
        raise RuntimeError(f"dovecot did not start (config {conf}):\n{last_error[-4000:]}")

    def _launch(self, conf: Path) -> bool:
        assert self.base is not None
        with open(self.base / "dovecot.stderr", "ab") as stderr:
            # Own session/process group (leader: the watchdog shell), so stop() can take down the whole
            # tree by group id. stdin is a pipe only we write to; see _WATCHDOG.
            proc = subprocess.Popen(
                ["/bin/sh", "-c", _WATCHDOG, "dovecot-watchdog", DOVECOT_BIN, "-F", "-c", str(conf)],
                stdin=subprocess.PIPE,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        self._proc = proc
        self._finalizer = weakref.finalize(self, _cleanup, proc.pid, self.base)
        return self._wait_ready(proc)

    def kill(self) -> None:
        """Take the server down as a crash would, keeping its mail and ports: `revive()` brings it back."""
        self._terminate()

    def revive(self) -> None:
        """Start a killed server again on the same ports, with the same users and mail."""
        assert self.base is not None and self._proc is None
        deadline = time.monotonic() + self.startup_timeout
        while not self._launch(self.base / "dovecot.conf"):
            self._terminate()
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not start again:\n{self.log_text()[-4000:]}")
            time.sleep(0.2)  # the old listener's port may not be free yet

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> bool:
        """True once the plain listener greets; False if dovecot exited (e.g. port taken: dovecot retries
        for ~2 s before giving up, so a collision costs that much; it is rare with kernel-chosen ports)."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as sock:
                    greeting = sock.recv(500)
                    if greeting.startswith(b"* OK") and self._greeting.encode() in greeting:
                        # Listeners are bound together by the master before it forks anything, so the
                        # imaps one is ready too.
                        sock.sendall(b"z LOGOUT\r\n")
                        return True
            except OSError:
                pass
            time.sleep(0.01)
        return False

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if proc is not None:
            _kill_group(proc.pid, proc)
            if proc.stdin is not None:
                proc.stdin.close()

    def stop(self) -> None:
        """Stop dovecot and delete the temp dir (set HERMES_KEEP_DOVECOT_TMP=1 to keep it for debugging)."""
        try:
            self._terminate()
        finally:
            if self.base is not None and not os.environ.get("HERMES_KEEP_DOVECOT_TMP"):
                shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)  # startup takes tens of ms: don't block the loop

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    @classmethod
    def fixture(cls, *, scope: str = "function", name: str | None = None, **kwargs: Any) -> Any:
        """A pytest fixture yielding a started server; skips the test if dovecot can't be had.

        `imap_server = ImapServer.fixture(scope="session")` + `imap_server.new_user()` per test is the
        fast path (one dovecot for the whole session).
        """
        import pytest

        @pytest.fixture(scope=scope, name=name)  # type: ignore[call-overload, untyped-decorator]
        def _fixture() -> Iterator[ImapServer]:
            try:
                ensure_dovecot()
            except DovecotUnavailable as exc:
                pytest.skip(str(exc))
            with cls(**kwargs) as server:
                yield server

        return _fixture

    # -- users ----------------------------------------------------------------------------------

    # One passwd-file per user ({base}/users/<name>) rather than one shared file: dovecot re-stats a
    # passwd-file at most once per second, so a user added to a shared file right after any login would stay
    # invisible for up to a second. A new user's file is a new path, which dovecot opens on first lookup.
    # Changing or removing an *existing* user still hits that once-a-second check; see _settle().

    @staticmethod
    def _check_name(name: str) -> None:
        if not name or any(c in name for c in ":/\n\r\t ") or name.startswith("."):
            raise ValueError(f"unusable IMAP user name {name!r}")

    def _write_user(self, name: str, password: str) -> None:
        assert self.base is not None
        # {SHA256} (base64) rather than {PLAIN}: any password, including ':' and non-ASCII, fits the
        # colon-separated passwd-file format.
        digest = base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest()).decode()
        path = self.base / "users" / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(f"{name}:{{SHA256}}{digest}::::::\n")
        tmp.chmod(0o644)
        try:
            # dovecot re-reads when mtime (whole seconds) or size differs, and a new password has the same
            # size: make sure the mtime moves forward.
            old = int(path.stat().st_mtime)
            new = max(int(time.time()), old + 1)
            os.utime(tmp, (new, new))
        except FileNotFoundError:
            pass
        os.replace(tmp, path)

    @staticmethod
    def _settle() -> None:
        # dovecot may have looked this user's file up earlier in the current second and won't look again
        # until the next one: wait for the clock to tick over so the change is certainly visible.
        time.sleep(1.02 - time.time() % 1)

    def add_user(self, name: str, password: str) -> ImapUser:
        """Add a user, effective immediately (no restart). Re-adding an existing user changes its password
        (this may block up to 1 s, see _settle)."""
        self._check_name(name)
        with self._lock:
            existed = name in self.users
            self._write_user(name, password)
            self.users = {**self.users, name: password}
            if existed:
                self._settle()
        return ImapUser(name, password)

    def remove_user(self, name: str) -> None:
        """Remove a user's login (its mail stays); may block up to 1 s, see _settle."""
        assert self.base is not None
        with self._lock:
            (self.base / "users" / name).unlink(missing_ok=True)
            self.users = {k: v for k, v in self.users.items() if k != name}
            self._settle()

    def new_user(self, prefix: str = "user", domain: str = "example.test") -> ImapUser:
        """A fresh user with a unique name and random password: per-test isolation on a shared server."""
        name = f"{prefix}{next(self._counter)}-{secrets.token_hex(3)}@{domain}"
        return self.add_user(name, f"pw-{secrets.token_urlsafe(12)}")

    # -- mail ----------------------------------------------------------------------------------

    def doveadm(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run doveadm against this instance (it talks to our auth socket via our config)."""
        if self.base is None or self._proc is None:
            raise RuntimeError("ImapServer is not running")
        proc = subprocess.run(
            [DOVEADM_BIN, "-c", str(self.base / "dovecot.conf"), *args],
            input=input,
            capture_output=True,
            timeout=30,
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"doveadm {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}"
            )
        return proc

    def create_folder(self, user: str, folder: str) -> None:
        """Create a folder (hierarchy separator "/"); no error if it exists."""
        proc = self.doveadm("mailbox", "create", "-u", user, folder, check=False)
        if proc.returncode != 0 and b"already exists" not in proc.stderr.lower():
            error = proc.stderr.decode(errors="replace")
            raise RuntimeError(f"doveadm mailbox create {folder!r} failed: {error}")

    def deliver(
        self,
        user: str,
        raw_message: bytes | str | EmailMessage,
        folder: str = "INBOX",
        *,
        seen: bool = False,
        flags: Sequence[str] = (),
    ) -> int:
        """Store a message through dovecot's own storage (`doveadm save`) and return its IMAP UID.

        Going through dovecot (instead of dropping a file into Maildir/new) assigns the UID at once and
        keeps dovecot's indexes consistent. ~10 ms per call. The folder is created if missing.
        """
        if isinstance(raw_message, EmailMessage):
            data = raw_message.as_bytes(policy=email.policy.SMTP)
        elif isinstance(raw_message, str):
            data = raw_message.encode("utf-8")
        else:
            data = raw_message
        if user not in self.users:
            raise KeyError(f"no such IMAP user {user!r}; add_user() first")
        with self._lock:
            if folder.upper() != "INBOX":
                self.create_folder(user, folder)
            self.doveadm("save", "-u", user, "-m", folder, input=data)
            # UIDs are strictly increasing and we hold the lock, so the new message has the highest UID.
            # (An IMAP client APPENDing to the same folder at that very instant could confuse this.)
            out = self.doveadm("-f", "flow", "mailbox", "status", "-u", user, "uidnext", folder).stdout
            uid = int(out.decode().strip().split("=", 1)[1]) - 1
            all_flags = [*flags, *(["\\Seen"] if seen else [])]
            if all_flags:
                flag_list = " ".join(all_flags)
                self.doveadm("flags", "add", "-u", user, flag_list, "mailbox", folder, "uid", str(uid))
        return uid

    def messages(self, user: str, folder: str = "INBOX") -> list[StoredMessage]:
        """What dovecot has stored (uid, flags, raw), e.g. to assert \\Seen after a mark-as-read."""
        fields = "uid flags text"
        out = self.doveadm("-f", "json", "fetch", "-u", user, fields, "mailbox", folder, "all").stdout
        # surrogateescape both ways: an 8-bit body that isn't UTF-8 comes back byte for byte.
        rows = json.loads(out.decode("utf-8", "surrogateescape") or "[]")
        return [
            StoredMessage(
                uid=int(row["uid"]),
                flags=frozenset(f for f in row["flags"].split() if f != "\\Recent"),
                raw=row["text"].encode("utf-8", "surrogateescape"),
            )
            for row in rows
        ]

    def folders(self, user: str) -> list[str]:
        return self.doveadm("mailbox", "list", "-u", user).stdout.decode().split("\n")[:-1]

    def port_for(self, security: Literal["none", "starttls", "ssl"]) -> int:
        """The port matching an imapSecurity setting."""
        if security == "ssl":
            if self.ssl_port is None:
                raise ValueError("ImapServer(tls=True) is needed for implicit TLS")
            return self.ssl_port
        if security == "starttls" and not self.tls_enabled:
            raise ValueError("ImapServer(tls=True) is needed for STARTTLS")
        return self.port

    def log_text(self) -> str:
        if self.base is None:
            return ""
        parts = []
        for name in ("dovecot.stderr", "dovecot.log"):
            path = self.base / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    _LOGIN_RE = re.compile(
        r"imap-login: Info: Login: user=<(?P<user>[^>]*)>, method=(?P<method>[^,]+), .*?(?P<sec>TLS|secured)"
    )

    def logins(self, user: str | None = None, min_count: int = 0, timeout: float = 3.0) -> list[ImapLogin]:
        """Successful logins so far (of `user`, or everyone), from dovecot's log: who, with which SASL
        mechanism, over TLS or not.

        dovecot writes its log asynchronously (via its log process), so a login that a client already saw
        succeed may take a moment to appear: pass `min_count` to wait for at least that many.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [
                ImapLogin(m["user"], m["method"], m["sec"] == "TLS")
                for m in self._LOGIN_RE.finditer(self.log_text())
                if user is None or m["user"] == user
            ]
            if len(found) >= min_count or time.monotonic() >= deadline:
                return found
            time.sleep(0.02)

    # Convenience for raw-IMAP tests with non-ASCII folder names.
    utf7_imap_encode = staticmethod(_utf7_imap_encode)

    def __repr__(self) -> str:
        return f"<ImapServer {self.host}:{self.port} ssl_port={self.ssl_port} users={len(self.users)}>"


# dovecot runs under this tiny sh watchdog ($1.. = the dovecot command line). Its stdin is a pipe whose only
# writer is the test process: when that process goes away by any means (os._exit from pytest-timeout,
# SIGKILL, a crash) the read sees EOF and the whole process group is terminated, so no dovecot outlives its
# test run. If dovecot exits by itself (e.g. port taken), the watchdog exits too, which start() notices.
_WATCHDOG = """
exec 3<&0
"$@" </dev/null 3<&- &
child=$!
{ read -r _ <&3; kill -TERM 0; } &
wait "$child"
kill -TERM 0
"""


def _cleanup(pgid: int, base: Path) -> None:
    """weakref.finalize hook for an ImapServer never stopped (garbage-collected, interpreter exit)."""
    _kill_group(pgid)
    if not os.environ.get("HERMES_KEEP_DOVECOT_TMP"):
        shutil.rmtree(base, ignore_errors=True)


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group. Zombies are skipped: once dovecot's master is gone,
    its orphans are reaped by PID 1 whenever it gets round to it, and they hold no resources anyway."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():  # not Linux: fall back to "any member at all"
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces/parens, so split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _kill_group(pgid: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Stop dovecot: SIGTERM its whole process group (the one start_new_session created, i.e. only ours),
    give it a moment, SIGKILL whatever is left.

    Signalling the whole group rather than the master: a master alone takes ~1.1 s to wind its children
    down; the group usually exits in ~15 ms. But the master has a shutdown race of its own: if a child
    (e.g. a just-logged-out imap) dies before the master reaps it, the master sleeps 1 s (repeatedly) waiting
    for it. Nothing in the temp dir is worth waiting for, so after a short grace period it gets SIGKILL.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    signalled = time.monotonic()
    killed = False
    while time.monotonic() - signalled < 5:
        if proc is not None:
            proc.poll()  # reap the watchdog shell (our child) so it doesn't linger as a zombie
        else:
            # weakref.finalize path, no Popen at hand: reap it directly if it is our child.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pgid, os.WNOHANG)
        if not _group_members(pgid):
            break
        if not killed and time.monotonic() - signalled > 0.3:
            killed = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        time.sleep(0.005)
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
