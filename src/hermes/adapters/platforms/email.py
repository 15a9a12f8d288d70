"""Email: send over SMTP (aiosmtplib), search and read over IMAP (`imap.py`), on the customer's own account.

Connections are made per tool call to the customer's servers, never pooled: each
call resolves the host through the SSRF guard, opens the TCP connection to an
address the guard vetted, and only then speaks SMTP or IMAP over that socket, with
the host name kept for TLS (SNI and certificate checks). Certificates are always
verified against the system trust store.

`smtpSecurity`/`imapSecurity`: `ssl` is implicit TLS (465, 993), `starttls` upgrades
a plain connection and fails if the server does not offer it (never a silent
downgrade to clear text), `none` is clear text (tests, or a relay on a trusted host).
IMAP defaults, when only `imapHost` is given: `ssl` on 993 (RFC 8314), and
`starttls` when `imapPort` is 143.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from typing import Annotated, Any, TypeVar

import aiosmtplib
import httpx
import msgspec
from msgspec import Meta

from hermes.adapters.platforms.base import tool
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.declaration import declare
from hermes.adapters.platforms.email_inbound import PolledEmailCodec
from hermes.adapters.platforms.imap import (
    ImapFailure,
    ImapLoginRefused,
    ImapProtocolError,
    ImapSession,
    ImapTooLarge,
    Selected,
    quote,
    search_criteria,
)
from hermes.adapters.platforms.inbound import RoutedInbound
from hermes.adapters.platforms.mime import (
    MAX_RECIPIENTS,
    BadAddress,
    build_message,
    envelope_recipients,
    inbound_message,
    parse_address,
    parse_recipients,
    read_message,
    summarize,
)
from hermes.adapters.platforms.network import (
    HostGuard,
    UnresolvableHost,
    UnsafeHost,
    close_quietly,
    connect_tcp,
)
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.adapters.platforms.results import result_schema
from hermes.application.ports.mailboxes import MailBatch, MailboxState, PolledAccount
from hermes.application.untrusted import UntrustedText
from hermes.domain.credentials import CredentialField, Credentials, email_address, hostname, one_of, plain_text, port
from hermes.domain.errors import Actor, HermesError, Invalid, NotConnected, NotFound, PlatformRejected, Sent
from hermes.domain.inbound import InboundChange
from hermes.domain.platform import Platform

T = TypeVar("T")
_MAX_TEXT_CHARS = 100_000
_MAX_HTML_CHARS = 200_000
_PARSE_ON_LOOP_BYTES = 256 * 1024
# What a polled message costs at most: its first bytes (headers and the start of the text), and the preview kept.
_PREVIEW_BYTES = 64 * 1024
_PREVIEW_CHARS = 4000
_SUMMARY_ITEMS = "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])"

Recipients = (
    Annotated[str, Meta(max_length=20_000)]
    | Annotated[list[Annotated[str, Meta(max_length=400)]], Meta(max_length=MAX_RECIPIENTS)]
)
Folder = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=255,
        description='Mailbox folder, "INBOX" by default; others as the server names them (e.g. "Sent", '
        '"Archive", "[Gmail]/All Mail").',
    ),
]


class SendArgs(msgspec.Struct, forbid_unknown_fields=True):
    to: Annotated[
        Recipients,
        Meta(
            description="Recipient address, or several: a list, or one comma-separated string. "
            'Each is "name@example.com" or "Name <name@example.com>".'
        ),
    ]
    subject: Annotated[str, Meta(max_length=998, description="Subject line (one line, no line breaks).")]
    body: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=1_000_000,
            description="The message. Plain text, unless html is true, in which case it is HTML (a plain-text "
            "version is derived from it for mail clients that do not show HTML).",
        ),
    ]
    cc: Annotated[Recipients | None, Meta(description="Copy recipients, same forms as to.")] = None
    bcc: Annotated[
        Recipients | None,
        Meta(description="Blind copy recipients; they receive the message but appear in no header."),
    ] = None
    html: Annotated[bool, Meta(description="true when body is HTML; false (default) for plain text.")] = False

    @property
    def audit_target(self) -> str:
        return self.to if isinstance(self.to, str) else ", ".join(self.to)


class SearchArgs(msgspec.Struct, forbid_unknown_fields=True):
    query: Annotated[
        Annotated[str, Meta(max_length=200)] | None,
        Meta(
            description="Words to look for in the subject, the sender and the body; every word must "
            'match (case-insensitive). "Double quotes" keep a phrase together. Omit to list the newest messages.',
        ),
    ] = None
    folder: Folder = "INBOX"
    limit: Annotated[int, Meta(ge=1, le=100, description="How many messages at most (1-100, default 20).")] = 20


class ReadArgs(msgspec.Struct, forbid_unknown_fields=True):
    uid: Annotated[int, Meta(ge=1, le=4_294_967_295, description="The message's uid, as email_search returned it.")]
    folder: Folder = "INBOX"

    @property
    def audit_target(self) -> str:
        return f"{self.folder} uid {self.uid}"


class Refusal(msgspec.Struct):
    address: str
    reason: str


class SentResult(msgspec.Struct):
    success: bool
    message_id: Annotated[str, Meta(description="The Message-ID header of the sent message, <...@...>.")]
    accepted: Annotated[list[str], Meta(description="Recipients the mail server accepted.")]
    refused: Annotated[
        list[Refusal] | None,
        Meta(description="Recipients the server refused (the others still got the message)."),
    ] = None


class Summary(msgspec.Struct, rename={"sender": "from"}):
    uid: int
    sender: Annotated[str | None, Meta(description='The From header, "Name <address>".')]
    to: list[str]
    subject: str | None
    date: Annotated[str | None, Meta(description="ISO 8601 date from the Date header (or the arrival time).")]
    seen: Annotated[bool, Meta(description="Whether the message is marked read.")]
    size: Annotated[int | None, Meta(description="Size in bytes.")] = None


class SearchResult(msgspec.Struct):
    folder: str
    total: Annotated[int, Meta(description="How many messages matched; messages holds the newest `limit`.")]
    messages: Annotated[list[Summary], Meta(description="Newest first, without bodies: email_read one by uid.")]


class Attachment(msgspec.Struct):
    filename: str | None
    content_type: str
    size: Annotated[int, Meta(description="Decoded size in bytes.")]


class ReadResult(msgspec.Struct, rename={"sender": "from"}):
    uid: int
    folder: str
    sender: str | None
    to: list[str]
    cc: list[str]
    subject: str | None
    date: str | None
    message_id: str | None
    in_reply_to: str | None
    seen: bool
    text: Annotated[
        str,
        Meta(description="The plain-text body (derived from the HTML when there is no text part), cut when long."),
    ]
    attachments: list[Attachment]
    html: Annotated[str | None, Meta(description="The HTML body, when there is one.")] = None
    size: int | None = None
    text_truncated: Annotated[bool | None, Meta(description="true when text or html was cut to fit.")] = None
    partial: Annotated[
        bool | None,
        Meta(description="true when the message is larger than Hermes reads; late parts may be missing."),
    ] = None


def _imap_missing() -> NotConnected:
    return NotConnected(
        P.value,
        "reading mail needs IMAP, which this email connection lacks",
        fix="reconnect Email in Hermes with imapHost, imapPort and imapSecurity (with a single-user setup: set "
        "EMAIL_DEFAULT_IMAP_HOST, EMAIL_DEFAULT_IMAP_PORT and EMAIL_DEFAULT_IMAP_SECURITY)",
    )


def _recipients(field: str, value: str | list[str] | None) -> list[Address]:
    try:
        return parse_recipients(value)
    except BadAddress as exc:
        raise Invalid(f"invalid argument {field}: {exc}", {field: str(exc)}) from None


def _check_folder(folder: str) -> None:
    try:
        quote(folder)  # the same check the IMAP command gets, before any connection is made
    except ValueError as exc:
        raise Invalid(f"invalid argument folder: {exc}", {"folder": str(exc)}) from None


def _ehlo_name(sock: socket.socket) -> str:
    """Our address as an RFC 5321 address literal: honest, and no blocking getfqdn() like aiosmtplib's default."""
    address = str(sock.getsockname()[0])
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _network_failure(exc: BaseException, server: str, where: str) -> PlatformRejected:
    """Connection-level trouble (refused, reset, timed out, TLS) in words that say what to check."""
    chain = _cause_chain(exc)
    cert = next((e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None)
    if cert is not None:
        return PlatformRejected(
            P.value,
            f"the TLS certificate of {server} could not be verified ({cert.verify_message or 'invalid'}); Hermes "
            "only talks to servers with a valid certificate",
            code="tls_certificate",
            actor=Actor.OWNER,
            fix=f"check the host name in {where} and reconnect Email in Hermes",
        )
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return PlatformRejected(
            P.value,
            f"the TLS handshake with {server} failed",
            code="tls_failed",
            actor=Actor.OWNER,
            fix="check that the security setting matches the port (ssl: 465 for SMTP, 993 for IMAP; starttls: 587 "
            "or 143) and reconnect Email in Hermes",
        )
    if any(isinstance(e, TimeoutError) for e in chain):
        return PlatformRejected(
            P.value,
            f"{server} did not answer in time (check {where} and its security setting if this persists)",
            code="timeout",
            retry_after=30.0,
        )
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        why = "refused the connection"
    elif any(isinstance(e, ConnectionError | aiosmtplib.SMTPServerDisconnected) for e in chain):
        why = "closed the connection"
    else:
        why = "could not be reached"
    return PlatformRejected(
        P.value,
        f"{server} {why} (check {where}, and that the security setting matches the port, if this persists)",
        code="unreachable",
        retry_after=30.0,
    )


def _smtp_failure(exc: BaseException, server: str) -> HermesError:
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return PlatformRejected(
            P.value,
            "the mail server refused the username/password",
            code=f"smtp_{exc.code}",
            said=" ".join(exc.message.split())[:200] or None,
            reconnect=True,
            fix="reconnect Email in Hermes with working credentials (many providers need an app password for SMTP)",
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = ", ".join(f"{r.recipient} ({r.code} {' '.join(r.message.split())[:120]})" for r in exc.recipients)
        return PlatformRejected(
            P.value,
            f"the mail server refused every recipient: {refused}",
            code="recipients_refused",
            fix="check the addresses",
        )
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return PlatformRejected(
            P.value,
            f"the mail server refused the sender address {exc.sender}",
            code=f"smtp_{exc.code}",
            said=" ".join(exc.message.split())[:200] or None,
            reconnect=True,
            fix="reconnect Email in Hermes with a fromAddress this account may send as",
        )
    if isinstance(exc, aiosmtplib.SMTPDataError | aiosmtplib.SMTPResponseException) and not isinstance(
        exc, aiosmtplib.SMTPConnectResponseError
    ):
        transient = 400 <= exc.code < 500
        return PlatformRejected(
            P.value,
            "the mail server refused the message",
            code=f"smtp_{exc.code}",
            said=" ".join(exc.message.split())[:200] or None,
            retry_after=60.0 if transient else None,
        )
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return PlatformRejected(P.value, f"the mail server cannot do this: {exc.message}", code="smtp_not_supported")
    if isinstance(exc, aiosmtplib.SMTPException) and not isinstance(
        exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPTimeoutError | aiosmtplib.SMTPServerDisconnected
    ):
        # STARTTLS or AUTH not offered, and the like: aiosmtplib's own sentence, which names no secret.
        return PlatformRejected(
            P.value,
            f"{server}: {exc.message}",
            code="smtp_unsupported",
            actor=Actor.OWNER,
            fix="check smtpSecurity and smtpPort and reconnect Email in Hermes",
        )
    return _network_failure(exc, server, "smtpHost/smtpPort/smtpSecurity")


def _imap_failure(exc: BaseException, server: str) -> HermesError:
    if isinstance(exc, ImapLoginRefused):
        return PlatformRejected(
            P.value,
            "the mail server refused the username/password for IMAP",
            code="imap_login",
            said=exc.text or None,
            reconnect=True,
            fix="reconnect Email in Hermes with working credentials (many providers need an app password for IMAP)",
        )
    if isinstance(exc, ImapFailure):
        return PlatformRejected(
            P.value, f"the IMAP server refused {exc.command}: {exc.result} {exc.text}", code="imap_refused"
        )
    if isinstance(exc, ImapTooLarge):
        return PlatformRejected(
            P.value,
            f"the IMAP server {server} sent {exc.what} larger than {exc.limit} bytes, which Hermes refuses to read",
            code="response_too_large",
        )
    if isinstance(exc, ImapProtocolError):
        return PlatformRejected(
            P.value, f"the IMAP server {server} answered in a way Hermes cannot follow", code="imap"
        )
    return _network_failure(exc, server, "imapHost/imapPort/imapSecurity")


_SMTP_ERRORS = (aiosmtplib.SMTPException, OSError)
_IMAP_ERRORS = (ImapFailure, ImapProtocolError, ImapTooLarge, OSError)


class SmtpImapGateway:
    """The customer's mail account: SMTP for sending, IMAP (when configured) for searching and reading."""

    def __init__(self, config: PlatformConfig, guard: HostGuard, tls: ssl.SSLContext) -> None:
        self._config = config
        self._guard = guard
        self._tls = tls

    # -- SMTP ---------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _smtp(self, creds: Credentials) -> AsyncIterator[aiosmtplib.SMTP]:
        host, port, security = str(creds["smtpHost"]), int(creds["smtpPort"]), str(creds["smtpSecurity"])
        vetted = await self._guard.vet(host, port, field="smtpHost")
        sock = await connect_tcp(vetted, port, self._config.connect_timeout)
        client = aiosmtplib.SMTP(
            hostname=vetted.name,  # with sock= this is only the TLS server name (SNI, certificate check)
            sock=sock,
            use_tls=security == "ssl",
            # Explicit: aiosmtplib's default (None) would carry on in clear text if STARTTLS is not offered.
            start_tls=security == "starttls",
            tls_context=self._tls,
            timeout=self._config.read_timeout,
            local_hostname=_ehlo_name(sock),
        )
        try:
            await client.connect()
        except BaseException:
            close_quietly(sock)
            raise
        try:
            await self._smtp_login(client, str(creds["username"]), str(creds["password"]))
            yield client
        except aiosmtplib.SMTPResponseException:
            await self._quit(client)  # the server answered: the conversation is still in step
            raise
        except BaseException:
            client.close()  # timed out or cut off: nothing more is waited for
            raise
        else:
            await self._quit(client)

    @staticmethod
    async def _quit(client: aiosmtplib.SMTP) -> None:
        try:
            async with asyncio.timeout(2.0):
                await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()

    @staticmethod
    async def _smtp_login(client: aiosmtplib.SMTP, username: str, password: str) -> None:
        await client.ehlo()  # after STARTTLS aiosmtplib forgets the extensions until the next EHLO
        methods = client.server_auth_methods
        # One mechanism, one attempt: aiosmtplib's login() tries each mechanism in turn,
        # so one wrong password would count as several failures towards an account lockout.
        if "plain" in methods:
            await client.auth_plain(username, password)
        elif "login" in methods:
            await client.auth_login(username, password)
        else:
            await client.login(username, password)

    async def send(self, args: SendArgs, creds: Credentials) -> dict[str, Any]:
        to = _recipients("to", args.to)
        cc = _recipients("cc", args.cc)
        bcc = _recipients("bcc", args.bcc)
        if not to:
            raise Invalid("invalid argument to: at least one recipient is required", {"to": "is required"})
        recipients = envelope_recipients(to, cc, bcc)
        if len(recipients) > MAX_RECIPIENTS:
            raise Invalid(
                f"too many recipients ({len(recipients)}); at most {MAX_RECIPIENTS} per message",
                {"to": f"at most {MAX_RECIPIENTS} recipients in to, cc and bcc together"},
            )
        if any(c in args.subject for c in "\r\n"):
            raise Invalid("invalid argument subject: must be one line", {"subject": "must not contain line breaks"})
        try:
            sender = parse_address(str(creds["fromAddress"]))
        except BadAddress:
            raise PlatformRejected(
                P.value, "the connection's fromAddress is not a usable address", code="bad_from", reconnect=True
            ) from None
        message = build_message(sender=sender, to=to, cc=cc, subject=args.subject, body=args.body, html=args.html)
        server = f"the mail server {creds['smtpHost']}:{creds['smtpPort']}"
        handed_over = False
        try:
            async with asyncio.timeout(self._config.total_timeout), self._smtp(creds) as client:
                handed_over = True
                refused, _ = await client.send_message(message, sender=sender.addr_spec, recipients=recipients)
        except (UnsafeHost, UnresolvableHost) as exc:
            raise exc.as_platform_error(P.value) from None
        except _SMTP_ERRORS as exc:
            failure = _smtp_failure(exc, server)
            failure.sent = Sent.NO  # the server refused it, or the line failed before the transaction began
            if handed_over and isinstance(failure, PlatformRejected) and failure.code in ("timeout", "unreachable"):
                # Cut off mid-transaction: the server may have queued the message before the line went quiet.
                failure = PlatformRejected(
                    P.value,
                    f"cut off in the middle of sending: {failure.detail}",
                    code=failure.code,
                    retry_after=failure.retry_after,
                    fix="check the Sent folder (or ask a recipient) before sending it again",
                    sent=Sent.MAYBE,
                )
            raise failure from exc
        refused_keys = {addr.lower() for addr in refused}
        result: dict[str, Any] = {
            "success": True,
            "message_id": str(message["Message-ID"]),
            "accepted": [r for r in recipients if r.lower() not in refused_keys],
        }
        if refused:
            result["refused"] = [
                {"address": addr, "reason": f"{reply.code} {' '.join(reply.message.split())[:200]}"}
                for addr, reply in refused.items()
            ]
        return result

    # -- IMAP ---------------------------------------------------------------------------------------

    @staticmethod
    def _imap_endpoint(creds: Credentials) -> tuple[str, int, str]:
        host = creds.get("imapHost")
        if host is None:
            raise _imap_missing()
        port = creds.get("imapPort")
        security = creds.get("imapSecurity")
        if security is None:
            security = "starttls" if port == 143 else "ssl"
        if port is None:
            port = 993 if security == "ssl" else 143
        return str(host), int(port), str(security)

    @contextlib.asynccontextmanager
    async def _imap(self, creds: Credentials, max_literal: int | None = None) -> AsyncIterator[ImapSession]:
        host, port, security = self._imap_endpoint(creds)
        vetted = await self._guard.vet(host, port, field="imapHost")
        sock = await connect_tcp(vetted, port, self._config.connect_timeout)
        try:
            session = await ImapSession.open(
                sock,
                server_hostname=vetted.name,
                security=security,
                tls=self._tls,
                timeout=self._config.read_timeout,
                max_literal=max_literal or self._config.email_max_message_bytes,
            )
        except BaseException:
            close_quietly(sock)
            raise
        try:
            await session.login(str(creds["username"]), str(creds["password"]))
            yield session
        except (ImapFailure, HermesError):
            await session.logout()  # the conversation is still in step: end it politely
            raise
        except BaseException:
            session.close()  # timed out, cut off or too large: nothing more is read or waited for
            raise
        else:
            await session.logout()

    async def _imap_call(
        self, creds: Credentials, work: Callable[[ImapSession], Awaitable[T]], max_literal: int | None = None
    ) -> T:
        host, port, _ = self._imap_endpoint(creds)
        server = f"the IMAP server {host}:{port}"
        try:
            async with asyncio.timeout(self._config.total_timeout), self._imap(creds, max_literal) as session:
                return await work(session)
        except (UnsafeHost, UnresolvableHost) as exc:
            raise exc.as_platform_error(P.value) from None
        except _IMAP_ERRORS as exc:
            raise _imap_failure(exc, server) from exc

    @staticmethod
    async def _select(session: ImapSession, folder: str) -> None:
        try:
            await session.select(folder)
        except ImapFailure as exc:
            raise NotFound(
                f"the folder {folder!r} cannot be opened ({exc.text}); folder names are case-sensitive "
                'except INBOX, e.g. "Sent" or "[Gmail]/Sent Mail"'
            ) from None

    async def search(self, args: SearchArgs, creds: Credentials) -> dict[str, Any]:
        _check_folder(args.folder)
        try:
            criteria, charset = search_criteria(args.query)
        except ValueError as exc:
            raise Invalid(f"invalid argument query: {exc}", {"query": str(exc)}) from None

        async def work(session: ImapSession) -> dict[str, Any]:
            await self._select(session, args.folder)
            try:
                newest, total = await session.uid_search(criteria, charset, keep=args.limit)
            except ImapFailure as exc:
                raise PlatformRejected(
                    P.value,
                    f"the IMAP server could not run this search ({exc.result} {exc.text}); "
                    "try simpler words (some servers cannot search for non-ASCII text)",
                    code="imap_search",
                ) from None
            rows: list[dict[str, Any]] = []
            if newest:
                fetched = {m.uid: m for m in await session.uid_fetch(newest, _SUMMARY_ITEMS)}
                for uid in newest:
                    found = fetched.get(uid)
                    if found is not None:
                        rows.append(
                            summarize(
                                found.data,
                                uid=uid,
                                flags=found.flags,
                                size=found.size,
                                internal_date=found.internal_date,
                            )
                        )
            return {"folder": args.folder, "total": total, "messages": rows}

        return await self._imap_call(creds, work)

    async def read(self, args: ReadArgs, creds: Credentials) -> dict[str, Any]:
        _check_folder(args.folder)
        cap = self._config.email_max_message_bytes

        async def work(session: ImapSession) -> dict[str, Any]:
            await self._select(session, args.folder)
            # A partial fetch bounds what a huge message (big attachments) costs us.
            fetched = await session.uid_fetch([args.uid], f"(UID FLAGS RFC822.SIZE BODY.PEEK[]<0.{cap}>)")
            found = next((m for m in fetched if m.uid == args.uid), None)
            if found is None:
                raise NotFound(
                    f"no message with uid {args.uid} in {args.folder}: it may have been moved or deleted; "
                    "email_search lists the current uids"
                )
            parse = functools.partial(
                read_message,
                found.data,
                uid=args.uid,
                folder=args.folder,
                flags=found.flags,
                size=found.size,
                partial=found.size is not None and found.size > len(found.data),
                max_text=_MAX_TEXT_CHARS,
                max_html=_MAX_HTML_CHARS,
            )
            if len(found.data) <= _PARSE_ON_LOOP_BYTES:
                return parse()
            # Parsing megabytes of MIME takes long enough to stall every other request on the loop.
            return await asyncio.to_thread(parse)

        return await self._imap_call(creds, work)

    # -- polling the INBOX (inbound) ----------------------------------------------------------------

    async def read_new(
        self, account: PolledAccount, credentials: Credentials, after: MailboxState, limit: int
    ) -> MailBatch:
        """One login, SELECT INBOX, a UID SEARCH when UIDNEXT says something is new, one partial FETCH."""

        async def work(session: ImapSession) -> MailBatch:
            selected = await self._selected_inbox(session)
            validity = selected.uidvalidity
            assert validity is not None
            if after.uidvalidity == validity:
                if selected.uidnext is not None and selected.uidnext <= after.last_uid + 1:
                    return MailBatch(validity, after.last_uid)  # nothing arrived: no search needed
                uids, total = await session.uid_search(["UID", f"{after.last_uid + 1}:*"], None, limit, oldest=True)
                # "n:*" also names the highest UID when it is below n (RFC 3501 6.4.8): not new.
                uids = sorted(u for u in uids if u > after.last_uid)
                more = len(uids) == limit and total > limit
            else:
                # A new mailbox (or one the server renumbered): start from its newest messages, no flood.
                uids = sorted((await session.uid_search(["ALL"], None, limit))[0])
                more = False
            if not uids:
                return MailBatch(validity, after.last_uid if after.uidvalidity == validity else 0)
            items = f"(UID RFC822.SIZE INTERNALDATE BODY.PEEK[]<0.{_PREVIEW_BYTES}>)"
            fetched = {m.uid: m for m in await session.uid_fetch(uids, items)}
            address = str(credentials.get("fromAddress") or credentials["username"])
            received = datetime.now(UTC)
            messages = [
                (
                    uid,
                    inbound_message(
                        fetched[uid].data[:_PREVIEW_BYTES],
                        account_address=address,
                        fallback_id=f"imap:{validity}:{uid}",
                        internal_date=fetched[uid].internal_date,
                        received=received,
                        max_text=_PREVIEW_CHARS,
                    ),
                )
                for uid in uids
                if uid in fetched  # one expunged since the search is simply gone
            ]
            return MailBatch(validity, uids[-1], messages, more)

        # A server that ignores the partial fetch is cut off at what the previews of one batch need.
        return await self._imap_call(credentials, work, max_literal=_PREVIEW_BYTES * max(limit, 2))

    @staticmethod
    async def _selected_inbox(session: ImapSession) -> Selected:
        selected = await session.select("INBOX")
        if selected.uidvalidity is None:
            raise PlatformRejected(
                P.value,
                "the IMAP server did not say the UIDVALIDITY of INBOX, so new mail cannot be told apart",
                code="imap_uidvalidity",
            )
        return selected

    # -- verify -------------------------------------------------------------------------------------

    async def _vet_hosts(self, creds: Credentials) -> None:
        endpoints = [("smtpHost", str(creds["smtpHost"]), int(creds["smtpPort"]))]
        if creds.get("imapHost") is not None:
            host, port, _ = self._imap_endpoint(creds)
            endpoints.append(("imapHost", host, port))
        problems: dict[str, str] = {}
        sentences: list[str] = []
        for field, host, port in endpoints:
            try:
                await self._guard.vet(host, port, field=field)
            except (UnsafeHost, UnresolvableHost) as exc:
                problems.update(exc.fields)
                sentences.append(f"{field} {host} {exc.fields[field]}")
        if problems:
            raise Invalid("; ".join(sentences) + "; Hermes only connects to public hosts", problems)

    async def verify(self, creds: Credentials) -> None:
        """SMTP connect, EHLO, STARTTLS or TLS, AUTH, QUIT (nothing sent); then IMAP LOGIN/LOGOUT if configured.

        Hosts that resolve to non-public addresses (or not at all) are reported
        first, together, as one `Invalid` naming each field (smtpHost, imapHost),
        like any other bad credential field.
        """
        await self._vet_hosts(creds)
        server = f"the mail server {creds['smtpHost']}:{creds['smtpPort']}"
        try:
            async with asyncio.timeout(self._config.total_timeout), self._smtp(creds):
                pass
        except _SMTP_ERRORS as exc:
            raise _smtp_failure(exc, server) from exc
        if creds.get("imapHost") is None:
            return

        host, port, _ = self._imap_endpoint(creds)
        try:
            async with asyncio.timeout(self._config.total_timeout), self._imap(creds):
                pass
        except _IMAP_ERRORS as exc:
            raise _imap_failure(exc, f"the IMAP server {host}:{port}") from exc


def mail_reader(
    config: PlatformConfig, *, tls: ssl.SSLContext | None = None, guard: HostGuard | None = None
) -> SmtpImapGateway:
    """The gateway as the INBOX poller's `MailReader` (same guard, TLS and limits as the tools)."""
    return SmtpImapGateway(
        config,
        guard or HostGuard(config.allow_private_networks, timeout=config.connect_timeout),
        tls or ssl.create_default_context(),
    )


def _polled_events(body: bytes) -> list[InboundChange]:
    return _CODEC.decode(Platform.EMAIL, body)


_CODEC = PolledEmailCodec()
# Email has no webhook: Hermes polls the INBOX of every account whose connection names an imapHost,
# and each event it queues names the customer it read for.
INBOUND = RoutedInbound(
    "mailbox", "mailbox", lambda creds: str(creds.get("imapHost") or ""), _polled_events, polled=True
)


def plugin(
    http: httpx.AsyncClient,
    config: PlatformConfig,
    *,
    tls: ssl.SSLContext | None = None,
    guard: HostGuard | None = None,
) -> PlatformPlugin:
    """The email plug-in. `http` is unused (mail is not HTTP) but keeps every plug-in built alike.

    `tls` replaces the system trust store (tests pass a context trusting their own CA).
    """
    del http
    gateway = SmtpImapGateway(
        config,
        guard or HostGuard(config.allow_private_networks, timeout=config.connect_timeout),
        tls or ssl.create_default_context(),
    )
    return PlatformPlugin(
        P,
        tools=[
            tool(
                P,
                "email_send",
                SendArgs,
                gateway.send,
                title="Send an email",
                description=(
                    "Send an email from the connected account (its fromAddress) over its own SMTP server, to one "
                    "or more recipients with optional cc and bcc. The body is plain text, or HTML with html: true. "
                    "Returns the Message-ID and the recipients the server accepted; recipients it refused are "
                    "listed under refused."
                ),
                target="audit_target",
                output_schema=result_schema(SentResult),
            ),
            tool(
                P,
                "email_search",
                SearchArgs,
                gateway.search,
                title="Search email",
                description=(
                    "Search a mailbox folder (INBOX by default) of the connected account over IMAP for messages "
                    "whose subject, sender or body contain every word of query, newest first, or list the newest "
                    "messages when query is omitted. Returns uid, from, to, subject, date, seen and size of each, "
                    "without bodies: use email_read with a uid to read one. Needs IMAP settings on the connection."
                ),
                target="folder",
                read_only=True,
                open_world=False,
                untrusted=(UntrustedText("messages[]", ("from", "subject"), ("from",)),),
                output_schema=result_schema(SearchResult),
            ),
            tool(
                P,
                "email_read",
                ReadArgs,
                gateway.read,
                title="Read an email",
                description=(
                    "Read one message by uid (from email_search) in a folder (INBOX by default): headers, the "
                    "plain-text body (long bodies are cut), the HTML body if any, and the attachments' names, "
                    "types and sizes (not their content). Does not mark the message as read."
                ),
                target="audit_target",
                read_only=True,
                open_world=False,
                untrusted=(UntrustedText("", ("from", "subject", "text", "html"), ("from",)),),
                output_schema=result_schema(ReadResult),
            ),
        ],
        verify=gateway.verify,
        inbound=INBOUND,
    )


_SECURITY = ("ssl", "starttls", "none")


def _imap_complete(creds: Credentials) -> None:
    # IMAP is optional, but half an IMAP configuration is a mistake worth naming.
    if any(k in creds for k in ("imapPort", "imapSecurity")) and "imapHost" not in creds:
        raise Invalid("imapHost is required with imapPort/imapSecurity", {"imapHost": "is required"})


P = declare(
    "email",
    display_name="Email",
    credentials=(
        CredentialField("smtpHost", hostname),
        CredentialField("smtpPort", port, integer=True),
        CredentialField("smtpSecurity", one_of(*_SECURITY), choices=_SECURITY),
        CredentialField("username", lambda v: plain_text(v, 320)),
        CredentialField("password", lambda v: plain_text(v, 1024), secret=True),
        CredentialField("fromAddress", email_address),
        CredentialField("imapHost", hostname, required=False),
        CredentialField("imapPort", port, required=False, integer=True),
        CredentialField("imapSecurity", one_of(*_SECURITY), required=False, choices=_SECURITY),
    ),
    rules=(_imap_complete,),
    build=plugin,
)
