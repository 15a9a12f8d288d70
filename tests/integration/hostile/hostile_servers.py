"""Servers a hostile customer could point Hermes at, each on loopback in a thread of its own (own event loop).

- `HostileImap`: speaks enough IMAP (greeting, CAPABILITY, LOGIN, SELECT, UID SEARCH, UID FETCH, LOGOUT)
  and then answers FETCH with a literal announced at any size, streamed as fast as the socket takes it or
  dripped a byte at a time, and UID SEARCH with as many UIDs as asked.
- `HostileSmtp`: greets with an SMTP reply that never ends, dripped a byte at a time or flooded.
- `GzipBomb`: an HTTP server answering every request 200 with `Content-Encoding: gzip` of 1 GB of zeros
  (about 1 MB on the wire), standing in for a customer's Obsidian API.
- `DrippingReceiver`: an https callback receiver that reads the request, then answers one byte every
  `every` seconds, forever.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import threading
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _ThreadServer:
    """An asyncio server on 127.0.0.1 in a daemon thread; `connections` counts accepted connections."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0
        self.open_connections = 0
        self.sent = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        try:
            await self._handle(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
            pass  # the client hung up (what Hermes is meant to do), or the server is shutting down
        finally:
            self.open_connections -= 1
            writer.close()

    def __enter__(self) -> _ThreadServer:
        self._thread.start()

        async def listen() -> asyncio.Server:
            return await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self._tls)

        self._server = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def shut() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


class HostileImap(_ThreadServer):
    def __init__(self, *, literal: int = 0, drip: float | None = None, search_uids: int = 1) -> None:
        super().__init__()
        self.literal = literal  # the size FETCH BODY[] announces
        self.drip = drip  # seconds between bytes of the literal; None streams as fast as possible
        self.search_uids = search_uids

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.sent += len(data)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._write(writer, b"* OK hostile IMAP ready\r\n")
        while line := await reader.readline():
            tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
            command = rest.upper()
            if command.startswith(b"CAPABILITY"):
                await self._write(writer, b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
            elif command.startswith(b"SELECT"):
                await self._write(writer, b"* 1 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n" + tag + b" OK done\r\n")
            elif command.startswith((b"LOGIN", b"NOOP")):
                await self._write(writer, b"* 1 EXISTS\r\n" + tag + b" OK done\r\n")
            elif command.startswith(b"UID SEARCH"):
                await self._search(writer)
                await self._write(writer, tag + b" OK search done\r\n")
            elif command.startswith(b"UID FETCH") and b"HEADER.FIELDS" in command:
                await self._headers(writer, rest)
                await self._write(writer, tag + b" OK fetch done\r\n")
            elif command.startswith(b"UID FETCH"):
                await self._bomb(writer)
                await self._write(writer, b")\r\n" + tag + b" OK fetch done\r\n")
            elif command.startswith(b"LOGOUT"):
                await self._write(writer, b"* BYE\r\n" + tag + b" OK bye\r\n")
                return
            else:
                await self._write(writer, tag + b" BAD unknown\r\n")

    async def _search(self, writer: asyncio.StreamWriter) -> None:
        await self._write(writer, b"* SEARCH")
        step = 50_000
        for start in range(1, self.search_uids + 1, step):
            numbers = range(start, min(start + step, self.search_uids + 1))
            await self._write(writer, b" " + " ".join(map(str, numbers)).encode())
        await self._write(writer, b"\r\n")

    async def _headers(self, writer: asyncio.StreamWriter, command: bytes) -> None:
        uids = [int(u) for u in re.findall(rb"\d+", command.split(b" ")[2])]
        for seq, uid in enumerate(uids, 1):
            header = b"From: a@example.org\r\nSubject: message %d\r\n\r\n" % uid
            await self._write(
                writer,
                b"* %d FETCH (UID %d FLAGS () RFC822.SIZE 100 BODY[HEADER.FIELDS (FROM TO SUBJECT DATE)] {%d}\r\n"
                % (seq, uid, len(header))
                + header
                + b")\r\n",
            )

    async def _bomb(self, writer: asyncio.StreamWriter) -> None:
        await self._write(writer, b"* 1 FETCH (UID 1 RFC822.SIZE %d BODY[]<0> {%d}\r\n" % (self.literal, self.literal))
        left = self.literal
        chunk = b"\0" * 65536
        while left > 0:
            if self.drip is not None:
                await self._write(writer, b"x")
                left -= 1
                await asyncio.sleep(self.drip)
                continue
            piece = chunk[: min(left, len(chunk))]
            await self._write(writer, piece)
            left -= len(piece)


class HostileSmtp(_ThreadServer):
    def __init__(self, *, drip: float | None = None) -> None:
        super().__init__()
        self.drip = drip  # seconds between bytes; None floods continuation lines as fast as possible

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = b"220-" + b"x" * 1000 + b"\r\n"
        while True:
            if self.drip is None:
                writer.write(line)
                await writer.drain()
                self.sent += len(line)
                continue
            for byte in line:
                writer.write(bytes([byte]))
                await writer.drain()
                self.sent += 1
                await asyncio.sleep(self.drip)


@functools.cache
def gzip_of_zeros(size: int = 1 << 30) -> bytes:
    """`size` zero bytes, gzip-compressed (1 GB becomes about 1 MB); built once per test session."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


class GzipBomb(_ThreadServer):
    def __init__(self) -> None:
        super().__init__()
        self.body = gzip_of_zeros()
        self.requests = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            self.requests += 1
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.olrapi.note+json\r\n"
                b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(self.body)
            )
            writer.write(head + self.body)
            await writer.drain()
            self.sent += len(self.body)


class DrippingReceiver(_ThreadServer):
    """Reads one request, then answers `HTTP/1.1 200 OK...` a byte every `every` seconds."""

    def __init__(self, cert: Path, key: Path, every: float = 2.0) -> None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
        super().__init__(tls)
        self.every = every
        self.requests = 0

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}/{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        self.requests += 1
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"." * 100_000
        for byte in answer:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(self.every)
