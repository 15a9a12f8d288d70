"""IMAP for the email plug-in: a small client for the few commands the tools use, bounded everywhere.

The other end is a server the customer chose, so nothing it sends may cost more
than a fixed amount: every response line is capped (`max_line`), a literal that
announces more than `max_literal` bytes ends the connection before a byte of it
is read, a command keeps at most `max_literal` bytes of responses in all, and a
UID SEARCH answer is read a chunk at a time keeping only the newest UIDs asked
for, never the whole line. Reads are chunked, so the event loop is never held
by one large answer, and every command has a deadline.

It connects over a socket the SSRF guard opened, does STARTTLS itself (refusing
bytes the server sent before the handshake), and quotes every customer- or
model-supplied argument.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_LITERAL = re.compile(rb"~?\{(\d{1,12})\}\Z")
_SEARCH_TERMS = re.compile(r'"([^"]*)"|(\S+)')
MAX_SEARCH_TERMS = 8

_CHUNK = 64 * 1024
MAX_LINE = 64 * 1024
# A SEARCH answer is streamed, so this only bounds how long a server may keep one going:
# 32 MiB is about four million UIDs.
MAX_SEARCH_BYTES = 32 * 1024 * 1024


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


class ImapTooLarge(Exception):
    """The server sent, or announced, more than Hermes reads; the connection was dropped at once."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"{what} is larger than {limit} bytes")
        self.what = what
        self.limit = limit


class ImapProtocolError(Exception):
    """An answer that is not IMAP as Hermes speaks it (no greeting, a malformed line, plain text before TLS)."""


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    """One message of a FETCH response: its metadata and the literal that was asked for."""

    uid: int
    flags: frozenset[str]
    size: int | None
    internal_date: str | None
    data: bytes


@dataclass(frozen=True, slots=True)
class Response:
    """One untagged response: its text (literals left out, lines joined by a space) and its literals."""

    text: bytes
    literals: tuple[bytes, ...] = ()


def parse_fetch(response: Response) -> FetchedMessage | None:
    """The record in one untagged `n FETCH (...)` response; None for anything else, or a FETCH without a UID
    (a flag change another client made)."""
    meta = response.text
    if not _FETCH_START.match(meta):
        return None
    uid = _UID.search(meta)
    if uid is None:
        return None
    flags = _FLAGS.search(meta)
    size = _SIZE.search(meta)
    internal = _INTERNALDATE.search(meta)
    return FetchedMessage(
        uid=int(uid.group(1)),
        flags=frozenset(flags.group(1).decode("ascii", "replace").split()) if flags else frozenset(),
        size=int(size.group(1)) if size else None,
        internal_date=internal.group(1).decode("ascii", "replace") if internal else None,
        data=b"".join(response.literals),
    )


@dataclass(slots=True)
class NewestUids:
    """The `keep` highest UIDs seen (the lowest, with `oldest`), and how many were listed (a server lists each
    once), without holding them all."""

    keep: int
    oldest: bool = False
    total: int = 0
    _heap: list[int] = field(default_factory=list)
    _held: set[int] = field(default_factory=set)

    def add(self, uids: Iterable[int]) -> None:
        heap, held = self._heap, self._held
        sign = -1 if self.oldest else 1
        for uid in uids:
            if uid in held:
                continue
            self.total += 1
            key = sign * uid
            if len(heap) < self.keep:
                heapq.heappush(heap, key)
                held.add(uid)
            elif key > heap[0]:
                held.discard(sign * heapq.heapreplace(heap, key))
                held.add(uid)

    def newest_first(self) -> list[int]:
        return sorted(self._held, reverse=True)


@dataclass(frozen=True, slots=True)
class Selected:
    """What SELECT said of the folder: how many messages, and the UIDVALIDITY/UIDNEXT codes if sent."""

    exists: int | None
    uidvalidity: int | None
    uidnext: int | None


_EXISTS = re.compile(rb"^(\d+) EXISTS\b")
_UIDVALIDITY = re.compile(rb"^OK \[UIDVALIDITY (\d{1,10})\]")
_UIDNEXT = re.compile(rb"^OK \[UIDNEXT (\d{1,10})\]")


class _Wire:
    """Bounded reads of IMAP responses over a stream: lines, literals and streamed SEARCH answers."""

    def __init__(self, reader: asyncio.StreamReader, max_line: int) -> None:
        self.reader = reader
        self.max_line = max_line
        self.buffer = bytearray()

    async def _more(self) -> None:
        # A stream that already holds data answers without yielding: yield anyway, so a server that
        # floods small lines cannot keep the loop to itself between chunks.
        await asyncio.sleep(0)
        chunk = await self.reader.read(_CHUNK)
        if not chunk:
            raise ImapFailure("IMAP", "BYE", "the server closed the connection")
        self.buffer += chunk

    async def line(self) -> bytes:
        """The next line without its CRLF; `ImapTooLarge` once more than `max_line` bytes arrive without one."""
        searched = 0
        while True:
            end = self.buffer.find(b"\r\n", searched)
            if 0 <= end <= self.max_line:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line
            if len(self.buffer) > self.max_line:
                raise ImapTooLarge("a response line", self.max_line)
            searched = max(0, len(self.buffer) - 1)
            await self._more()

    async def exactly(self, size: int) -> bytes:
        """The next `size` bytes (a literal whose size was checked before calling)."""
        while len(self.buffer) < size:
            await self._more()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def starts_with(self, prefix: bytes) -> bool:
        while len(self.buffer) < len(prefix) and b"\r\n" not in self.buffer:
            await self._more()
        return self.buffer.startswith(prefix)

    async def numbers(self, into: NewestUids, max_bytes: int) -> None:
        """Numbers up to the end of the line, fed to `into` a chunk at a time; other words are skipped."""
        read = 0
        carry = b""
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                take = end
            else:
                take = len(self.buffer) - (1 if self.buffer.endswith(b"\r") else 0)
            piece = carry + bytes(self.buffer[:take])
            del self.buffer[: take + 2 if end >= 0 else take]
            read += take
            if read > max_bytes:
                raise ImapTooLarge("the search result", max_bytes)
            words = piece.split()
            if end < 0 and words and not piece[-1:].isspace():
                carry = words.pop()  # may continue in the next chunk
                if len(carry) > 32:
                    raise ImapProtocolError("a search result holds something that is not a UID")
            else:
                carry = b""
            into.add(int(w) for w in words if w.isdigit() and len(w) <= 10)
            if end >= 0:
                return
            await self._more()


@dataclass(frozen=True, slots=True)
class _Tagged:
    result: str
    text: str


class ImapSession:
    """One IMAP connection. Every command is bounded by `timeout` seconds and by the size limits above."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        timeout: float,
        max_literal: int,
        max_line: int = MAX_LINE,
    ) -> None:
        self._writer = writer
        self._wire = _Wire(reader, max_line)
        self._timeout = timeout
        self._max_literal = max_literal
        self._tags = 0
        self.capabilities: frozenset[str] = frozenset()
        self.preauthenticated = False

    @classmethod
    async def open(
        cls,
        sock: socket.socket,
        *,
        server_hostname: str,
        security: str,
        tls: ssl.SSLContext,
        timeout: float,
        max_literal: int,
    ) -> ImapSession:
        """Greet over `sock` (TLS first for "ssl", STARTTLS for "starttls"); the caller logs in."""
        implicit = security == "ssl"
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                sock=sock,
                ssl=tls if implicit else None,
                server_hostname=server_hostname if implicit else None,
                ssl_handshake_timeout=timeout if implicit else None,
                limit=_CHUNK,
            )
        session = cls(reader, writer, timeout=timeout, max_literal=max_literal)
        try:
            async with asyncio.timeout(timeout):
                await session._greeting()
            await session._capability()
            if security == "starttls":
                await session._starttls(tls, server_hostname)
        except BaseException:
            session.close()
            raise
        return session

    async def _greeting(self) -> None:
        line = await self._wire.line()
        if line.startswith(b"* PREAUTH"):
            self.preauthenticated = True
        elif not line.startswith(b"* OK"):
            text = line.decode("utf-8", "replace")[:300]
            if line.startswith(b"* BYE"):
                raise ImapFailure("CONNECT", "BYE", text[6:])
            raise ImapProtocolError("the server did not greet like an IMAP server")

    async def _response(self, first: bytes, budget: int) -> Response:
        """An untagged response starting with `first`, with its literals, if it fits in `budget` bytes."""
        parts: list[bytes] = []
        literals: list[bytes] = []
        size = 0
        line = first
        while True:
            size += len(line)
            literal = _LITERAL.search(line)
            parts.append(line if literal is None else line[: literal.start()])
            if literal is None:
                break
            announced = int(literal.group(1))
            if announced > self._max_literal:
                raise ImapTooLarge("a message", self._max_literal)
            size += announced
            if size > budget:
                raise ImapTooLarge("the answer", self._max_literal)
            literals.append(await self._wire.exactly(announced))
            line = await self._wire.line()
        if size > budget:
            raise ImapTooLarge("the answer", self._max_literal)
        return Response(b" ".join(parts), tuple(literals))

    async def _command(
        self,
        name: str,
        *args: str,
        keep: Callable[[Response], bool] | None = None,
        search: NewestUids | None = None,
    ) -> tuple[_Tagged, list[Response]]:
        """Send one command and read up to its tagged completion; untagged responses `keep` accepts are kept."""
        self._tags += 1
        tag = f"H{self._tags}"
        # Room for one message of the largest size plus the lines around it.
        budget = self._max_literal + self._wire.max_line
        kept: list[Response] = []
        try:
            async with asyncio.timeout(self._timeout):
                self._writer.write(" ".join((tag, name, *args)).encode("utf-8") + b"\r\n")
                await self._writer.drain()
                while True:
                    if search is not None and await self._wire.starts_with(b"* SEARCH"):
                        del self._wire.buffer[: len(b"* SEARCH")]
                        await self._wire.numbers(search, MAX_SEARCH_BYTES)
                        continue
                    line = await self._wire.line()
                    if line.startswith(tag.encode() + b" "):
                        result, _, text = line[len(tag) + 1 :].partition(b" ")
                        return _Tagged(result.decode("ascii", "replace"), text.decode("utf-8", "replace")[:300]), kept
                    if line.startswith(b"* "):
                        response = await self._response(line[2:], budget)
                        if keep is not None and keep(response):
                            kept.append(response)
                            budget -= len(response.text) + sum(len(x) for x in response.literals)
                    elif line.startswith(b"+"):
                        raise ImapProtocolError("the server asked for data Hermes did not offer")
                    elif line:
                        raise ImapProtocolError("the server sent a line that is not an IMAP response")
        except ImapTooLarge:
            self.abort()
            raise

    async def _checked(self, name: str, *args: str, keep: Callable[[Response], bool] | None = None) -> list[Response]:
        done, kept = await self._command(name, *args, keep=keep)
        if done.result != "OK":
            raise ImapFailure(name, done.result, done.text)
        return kept

    async def _capability(self) -> None:
        found = await self._checked("CAPABILITY", keep=lambda r: r.text.startswith(b"CAPABILITY "))
        words = b" ".join(r.text for r in found).decode("ascii", "replace").split()
        self.capabilities = frozenset(w.upper() for w in words if w.upper() != "CAPABILITY")

    async def _starttls(self, tls: ssl.SSLContext, server_hostname: str) -> None:
        if "STARTTLS" not in self.capabilities:
            raise ImapFailure("STARTTLS", "NO", "the server does not offer STARTTLS")
        await self._checked("STARTTLS")
        # Anything the server sent after its OK and before the handshake would be read as if it came
        # over TLS (a man in the middle injecting responses): refuse it.
        if self._wire.buffer or getattr(self._wire.reader, "_buffer", bytearray()):
            raise ImapProtocolError("the server sent data before the TLS handshake")
        async with asyncio.timeout(self._timeout):
            await self._writer.start_tls(tls, server_hostname=server_hostname, ssl_handshake_timeout=self._timeout)
        # RFC 3501 6.2.1: capabilities learnt before TLS must be discarded.
        await self._capability()

    async def login(self, username: str, password: str) -> None:
        if self.preauthenticated:
            return
        if "LOGINDISABLED" in self.capabilities:
            raise ImapFailure(
                "LOGIN", "NO", "the server refuses passwords on an unencrypted connection (use starttls or ssl)"
            )
        try:
            user, secret = quote(username), quote(password)
        except ValueError:
            raise ImapLoginRefused("LOGIN", "NO", "the username or password holds a line break") from None
        done, _ = await self._command("LOGIN", user, secret)
        if done.result != "OK":
            raise ImapLoginRefused("LOGIN", done.result, done.text)

    async def select(self, folder: str) -> Selected:
        found: dict[re.Pattern[bytes], int | None] = {_EXISTS: None, _UIDVALIDITY: None, _UIDNEXT: None}

        def keep(response: Response) -> bool:
            for pattern in found:
                match = pattern.match(response.text)
                if match is not None:
                    found[pattern] = int(match.group(1))
            return False

        await self._checked("SELECT", quote(encode_mailbox(folder)), keep=keep)
        return Selected(found[_EXISTS], found[_UIDVALIDITY], found[_UIDNEXT])

    async def uid_search(
        self, criteria: Sequence[str], charset: str | None, keep: int, *, oldest: bool = False
    ) -> tuple[list[int], int]:
        """The `keep` newest (highest; with `oldest`, lowest) UIDs matching, newest first, and how many matched."""
        newest = NewestUids(keep, oldest)
        args = ["CHARSET", charset, *criteria] if charset else list(criteria)
        done, _ = await self._command("UID SEARCH", *args, search=newest)
        if done.result != "OK":
            raise ImapFailure("SEARCH", done.result, done.text)
        return newest.newest_first(), newest.total

    async def uid_fetch(self, uids: Sequence[int], items: str) -> list[FetchedMessage]:
        wanted = set(uids)
        found: dict[int, FetchedMessage] = {}

        def keep(response: Response) -> bool:
            record = parse_fetch(response)
            if record is None or record.uid not in wanted or record.uid in found:
                return False
            found[record.uid] = record
            return True

        await self._checked("UID FETCH", ",".join(str(u) for u in uids), items, keep=keep)
        return list(found.values())

    async def logout(self) -> None:
        try:
            async with asyncio.timeout(min(self._timeout, 2.0)):
                await self._command("LOGOUT")
        except (TimeoutError, OSError, ImapFailure, ImapProtocolError, ImapTooLarge):
            pass  # the connection is closed below either way
        finally:
            self.close()

    def close(self) -> None:
        self._writer.close()

    def abort(self) -> None:
        """Drop the connection without reading or sending another byte."""
        self._writer.transport.abort()
