"""An HTTP/1.1 forwarder that adds one `Authorization` header to every request.

For clients that cannot send a credential themselves (the MCP conformance suite):
everything else, the Host and Origin headers included, reaches Hermes unchanged,
and responses are piped back byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from tests.support import free_port

_MAX_HEAD = 64 * 1024


class AuthProxy:
    def __init__(self, target_port: int, authorization: str) -> None:
        self.target_port = target_port
        self.header = f"Authorization: {authorization}\r\n".encode()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"auth-proxy-{self.port}", daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> AuthProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, limit=_MAX_HEAD)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        back = asyncio.ensure_future(self._pipe(up_reader, writer))
        self._tasks.add(back)
        back.add_done_callback(self._tasks.discard)
        with contextlib.suppress(Exception):
            while head := await reader.readuntil(b"\r\n\r\n"):
                request_line, _, rest = head.partition(b"\r\n")
                lines = [line for line in rest.split(b"\r\n") if not line.lower().startswith(b"authorization:")]
                length = 0
                for line in lines:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                up_writer.write(request_line + b"\r\n" + self.header + b"\r\n".join(lines))
                if length:
                    up_writer.write(await reader.readexactly(length))
                await up_writer.drain()
        up_writer.close()
        await back

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()
