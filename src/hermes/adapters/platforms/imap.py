"""IMAP for the email plug-in: safe command arguments, response parsing, and a session over aioimaplib.

aioimaplib speaks the protocol; this module adds what the email tools need on top:
connecting over a socket the SSRF guard opened (aioimaplib only dials host names
itself), STARTTLS (which aioimaplib lists but does not implement), quoting every
customer- or model-supplied argument (aioimaplib sends most arguments verbatim,
the LOGIN user name included), and turning FETCH responses into records.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import ssl
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aioimaplib

T = TypeVar("T")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_SEARCH_TERMS = re.compile(r'"([^"]*)"|(\S+)')
MAX_SEARCH_TERMS = 8


class ImapFailure(Exception):
    """The IMAP server answered NO/BAD (or went away); `text` is its own explanation, safe to show."""

    def __init__(self, command: str, result: str, text: str) -> None:
        super().__init__(f"{command} failed: {result} {text}")
        self.command = command
        self.result = result
        self.text = text


class ImapLoginRefused(ImapFailure):
    """LOGIN was refused: the username/password (or an app password) is wrong."""


def quote(value: str) -> str:
    """An RFC 3501 quoted string; control characters are refused (CR/LF would start a new command)."""
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters or line breaks")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_mailbox(name: str) -> str:
    """RFC 3501 modified UTF-7, the encoding IMAP uses for non-ASCII folder names ("Entwürfe")."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii")
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def search_terms(query: str | None) -> list[str]:
    """Words of a plain-text query; "double quoted" phrases stay together."""
    if not query:
        return []
    terms = [phrase or word for phrase, word in _SEARCH_TERMS.findall(query)]
    return [t for t in terms if t.strip()][:MAX_SEARCH_TERMS]


def search_criteria(query: str | None) -> tuple[list[str], str | None]:
    """UID SEARCH criteria and charset for a plain-text query.

    Every term must appear in the subject, the sender or the body (terms are
    ANDed, as IMAP does with a list of keys). Each term is a quoted string, so a
    query can never add search keys or commands of its own. Non-ASCII terms are
    sent as UTF-8 with CHARSET UTF-8 (RFC 3501 section 6.4.4).
    """
    terms = search_terms(query)
    if not terms:
        return ["ALL"], None
    criteria: list[str] = []
    for term in terms:
        quoted = quote(term)
        criteria += ["OR", "OR", "SUBJECT", quoted, "FROM", quoted, "BODY", quoted]
    charset = None if all(t.isascii() for t in terms) else "UTF-8"
    return criteria, charset


def parse_search(lines: Sequence[bytes | bytearray]) -> list[int]:
    """UIDs from a UID SEARCH response (aioimaplib strips the leading "SEARCH" word)."""
    uids: list[int] = []
    for line in lines[:-1]:  # the last line is the tagged completion text
        text = bytes(line).strip()
        if text.startswith(b"SEARCH"):
            text = text[len(b"SEARCH") :]
        if re.fullmatch(rb"[\d ]*", text):
            uids += [int(n) for n in text.split()]
    return uids


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    """One message of a FETCH response: its metadata and the literal that was asked for."""

    uid: int
    flags: frozenset[str]
    size: int | None
    internal_date: str | None
    data: bytes


def parse_fetch(lines: Sequence[bytes | bytearray]) -> list[FetchedMessage]:
    """Records from a UID FETCH response as aioimaplib hands it over.

    aioimaplib gives each message as a `n FETCH (...` line ending in `{size}`, the
    literal as a bytearray, then the rest of the line (`)` or more items); the last
    line is the tagged completion text. Unsolicited FETCH responses without a UID
    (flag changes made by another client) are dropped.
    """
    found: list[FetchedMessage] = []
    meta: bytes | None = None
    data = b""

    def finish() -> None:
        if meta is None:
            return
        uid = _UID.search(meta)
        if uid is None:
            return
        flags = _FLAGS.search(meta)
        size = _SIZE.search(meta)
        internal = _INTERNALDATE.search(meta)
        found.append(
            FetchedMessage(
                uid=int(uid.group(1)),
                flags=frozenset(flags.group(1).decode("ascii", "replace").split()) if flags else frozenset(),
                size=int(size.group(1)) if size else None,
                internal_date=internal.group(1).decode("ascii", "replace") if internal else None,
                data=data,
            )
        )

    for line in lines[:-1]:
        if isinstance(line, bytearray):
            data += bytes(line)
        elif _FETCH_START.match(line):
            finish()
            meta, data = line, b""
        elif meta is not None:
            meta += b" " + line
    finish()
    return found


class _ImapProtocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol, minus command logging and plus prompt failure on a dropped connection."""

    def send(self, line: str, scrub: str | None = None) -> None:
        # aioimaplib logs each command at DEBUG and hides the password only where it
        # appears verbatim, which quoting defeats for passwords holding `"` or `\`.
        self.transport.write(f"{line}\r\n".encode())

    def connection_lost(self, exc: Exception | None) -> None:
        # Without this a command in flight waits for its timeout after the server hangs up.
        pending = [self.pending_sync_command, *self.pending_async_commands.values()]
        for command in pending:
            if command is not None:
                command.close(b"the server closed the connection", "BYE")
        super().connection_lost(exc)


class ImapSession:
    """One logged-in IMAP connection. Every command is bounded by `timeout` seconds."""

    def __init__(self, protocol: Any, timeout: float) -> None:
        self._protocol = protocol
        self._timeout = timeout

    @classmethod
    async def open(
        cls,
        sock: socket.socket,
        *,
        server_hostname: str,
        security: str,
        tls: ssl.SSLContext,
        timeout: float,
    ) -> ImapSession:
        """Greet over `sock` (TLS first for "ssl", STARTTLS for "starttls"); the caller logs in."""
        loop = asyncio.get_running_loop()
        protocol = _ImapProtocol(loop)
        implicit = security == "ssl"
        await asyncio.wait_for(
            loop.create_connection(
                lambda: protocol,
                sock=sock,
                ssl=tls if implicit else None,
                server_hostname=server_hostname if implicit else None,
                ssl_handshake_timeout=timeout if implicit else None,
            ),
            timeout,
        )
        session = cls(protocol, timeout)
        try:
            await session._bounded(protocol.wait("AUTH|NONAUTH"))
            if security == "starttls":
                await session._starttls(tls, server_hostname)
        except BaseException:
            session.close()
            raise
        return session

    async def _bounded(self, operation: Awaitable[T]) -> T:
        return await asyncio.wait_for(operation, self._timeout)

    async def _execute(self, name: str, *args: str) -> Any:
        protocol = self._protocol
        command = aioimaplib.Command(name, protocol.new_tag(), *args, loop=protocol.loop)
        return await self._bounded(protocol.execute(command))

    async def _starttls(self, tls: ssl.SSLContext, server_hostname: str) -> None:
        protocol = self._protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapFailure("STARTTLS", "NO", "the server does not offer STARTTLS")
        response = await self._execute("STARTTLS")
        _check("STARTTLS", response)
        loop = asyncio.get_running_loop()
        protocol.transport = await loop.start_tls(
            protocol.transport, protocol, tls, server_hostname=server_hostname, ssl_handshake_timeout=self._timeout
        )
        # RFC 3501 6.2.1: capabilities learnt before TLS must be discarded.
        await self._bounded(protocol.capability())

    async def login(self, username: str, password: str) -> None:
        if "LOGINDISABLED" in self._protocol.capabilities:
            raise ImapFailure(
                "LOGIN", "NO", "the server refuses passwords on an unencrypted connection (use starttls or ssl)"
            )
        # aioimaplib quotes the password but sends the user name as is.
        response = await self._bounded(self._protocol.login(quote(username), password))
        if response.result != "OK":
            raise ImapLoginRefused("LOGIN", response.result, _text(response))

    async def select(self, folder: str) -> None:
        response = await self._bounded(self._protocol.select(quote(encode_mailbox(folder))))
        _check("SELECT", response)

    async def uid_search(self, criteria: Sequence[str], charset: str | None) -> list[int]:
        response = await self._bounded(self._protocol.search(*criteria, charset=charset, by_uid=True))
        _check("SEARCH", response)
        return parse_search(response.lines)

    async def uid_fetch(self, uids: Sequence[int], items: str) -> list[FetchedMessage]:
        message_set = ",".join(str(u) for u in uids)
        # aioimaplib's own FETCH timeout restarts whenever data arrives, so a large
        # message that keeps flowing is not cut off; the caller's deadline bounds it.
        response = await self._protocol.fetch(message_set, items, by_uid=True, timeout=self._timeout)
        _check("FETCH", response)
        return parse_fetch(response.lines)

    async def logout(self) -> None:
        try:
            await asyncio.wait_for(self._protocol.logout(), min(self._timeout, 2.0))
        except (TimeoutError, OSError, aioimaplib.AioImapException):
            pass  # the connection is closed below either way
        finally:
            self.close()

    def close(self) -> None:
        transport = self._protocol.transport
        if transport is not None:
            transport.close()


def _text(response: Any) -> str:
    lines = [bytes(line) for line in response.lines if isinstance(line, bytes | bytearray)]
    text = lines[-1].decode("utf-8", "replace") if lines else ""
    return text[:300]


def _check(command: str, response: Any) -> None:
    if response.result != "OK":
        raise ImapFailure(command, response.result, _text(response))
