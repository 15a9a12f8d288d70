"""Redis connection and error translation shared by the Redis adapters."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Iterable
from types import TracebackType
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import HIREDIS_AVAILABLE

from hermes.domain.errors import Unavailable

RedisClient = Redis | RedisCluster

# Set while a round trip runs under one deadline for all of it (`_AutoPipeline`): its reads take no timer each.
_ONE_DEADLINE: contextvars.ContextVar[bool] = contextvars.ContextVar("redis_one_deadline", default=False)

# Commands that block server-side must keep a connection to themselves (as redis-py names them, in any case).
_BLOCKING = ("BLPOP", "BRPOP", "BLMOVE", "BZPOPMIN", "BZPOPMAX", "XREAD", "XREADGROUP", "WAIT")
_UNBATCHED = frozenset(
    [
        *_BLOCKING,
        *(n.lower() for n in _BLOCKING),
        *(n.encode() for n in _BLOCKING),
        *(n.lower().encode() for n in _BLOCKING),
    ]
)


class _AutoPipeline:
    """Coalesce commands issued in the same event-loop turn into one round trip.

    Under load many requests are in flight on one loop; each redis-py round trip
    costs ~75 us of CPU here (PERFORMANCE.md), most of it per call rather than per
    command. Sending whatever was issued during one loop turn as one write, and
    reading each command's reply in turn, keeps every command's own semantics (each
    gets its own reply or error) while paying that cost once per batch. Dependent
    commands within one request still run in order: a caller awaits its reply before
    issuing the next.

    A round trip takes a connection of the client's own (`_idle`), not one from the pool:
    the pool's lock, its connection checks and its metrics hooks cost more than the
    commands of a small batch, and a connection here never goes back with a reply
    unread (one cut short is disconnected). At most `max_connections` round trips are
    in flight; past that, what is issued waits for the next one to come back and
    goes out with it, in one larger batch.
    """

    _batch: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]]

    def _init_batching(self) -> None:
        self._batch = []
        self._flush_scheduled = False
        self._idle: list[Any] = []  # connected (or closed) connections between round trips
        self._busy = 0
        self._held_back = False  # a batch waits for a connection to come back
        self._closings = 0  # how many times the client was closed: a round trip under way then does not return
        self._in_flight: set[asyncio.Future[Any]] = set()  # keeps round-trip tasks referenced until done

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if not args or args[0] in _UNBATCHED or getattr(self, "_batch", None) is None:
            return await super().execute_command(*args, **options)  # type: ignore[misc]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._batch.append((args, options, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        if not self._batch:
            self._flush_scheduled = False
            return
        if self._busy >= self.connection_pool.max_connections:  # type: ignore[attr-defined]
            self._held_back = True  # sent when a round trip comes back (`_round_trip`), still scheduled till then
            return
        batch, self._batch = self._batch, []
        self._flush_scheduled = False
        self._busy += 1
        task = asyncio.ensure_future(self._round_trip(batch))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _bounded(self, call: Coroutine[Any, Any, Any]) -> Any:
        """One round trip under one deadline (the socket timeout), with no timer per write and per reply.

        redis-py bounds every write with `asyncio.wait_for` (a task each) and every reply with a timer of its
        own; for a pipeline of ten replies that was a tenth of a tool call's CPU. Here one timer bounds the
        whole round trip; when it fires, the read under way disconnects the connection (redis-py does so on
        any interruption), so no reply is left on it for the next user.
        """
        token = _ONE_DEADLINE.set(True)
        try:
            async with asyncio.timeout(self._deadline):
                return await call
        except TimeoutError:
            raise RedisTimeoutError("Timeout talking to Redis") from None
        finally:
            _ONE_DEADLINE.reset(token)

    @property
    def _deadline(self) -> float | None:
        timeout = self.connection_pool.connection_kwargs.get("socket_timeout")  # type: ignore[attr-defined]
        return float(timeout) if timeout else None

    async def _round_trip(self, batch: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]]) -> None:
        connection = self._idle.pop() if self._idle else self.connection_pool.make_connection()  # type: ignore[attr-defined]
        closings = self._closings
        try:
            results = await self._bounded(self._exchange(connection, batch))
        except BaseException as exc:
            for *_, future in batch:
                if future.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
            await connection.disconnect(nowait=True)  # whatever it still had on the wire is not read by anyone
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._busy -= 1
            closed = self._closings != closings  # the client was closed while this round trip ran
            if not closed:
                self._idle.append(connection)
            if self._held_back:
                self._held_back = False
                self._flush()
            if closed:
                await connection.disconnect(nowait=True)
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _exchange(
        self, connection: Any, batch: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]]
    ) -> list[Any]:
        """Every command written at once (connecting first if need be, PINGing a connection idle past the
        health-check interval), then each reply read and shaped as redis-py shapes it; an error reply is kept
        as that command's result."""
        await connection.send_packed_command(connection.pack_commands([args for args, _, _ in batch]))
        results: list[Any] = []
        for args, options, _ in batch:
            try:
                results.append(await self.parse_response(connection, args[0], **options))  # type: ignore[attr-defined]
            except ResponseError as e:
                results.append(e)
        return results

    async def _close_own(self) -> None:
        self._closings += 1
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.disconnect()


class _Script(AsyncScript):
    """A script of the batching client, called as redis-py calls it (EVALSHA; on NOSCRIPT, one SCRIPT LOAD and
    a second try) but straight through `execute_command`: redis-py's own call imports its pipeline class and
    copies the keys and arguments twice on every call, more than the command's share of its round trip."""

    async def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        if client is not None:
            return await super().__call__(keys, args, client)
        keys = keys or ()
        target = self.registered_client
        try:
            return await target.execute_command("EVALSHA", self.sha, len(keys), *keys, *(args or ()))
        except NoScriptError:
            self.sha = await target.script_load(self.script)
            return await target.execute_command("EVALSHA", self.sha, len(keys), *keys, *(args or ()))


class BatchingRedis(_AutoPipeline, Redis):  # type: ignore[misc]  # redis-py's own mixins disagree
    """redis.asyncio.Redis whose commands share round trips with concurrent requests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_batching()

    def register_script(self, script: Any) -> AsyncScript:  # type: ignore[override]  # redis-py types the sync one
        return _Script(self, script)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await self._close_own()
        await super().aclose(close_connection_pool)


class PackedInC:
    """Commands packed by hiredis in C, as redis-py's synchronous client packs them.

    Its asyncio connections pack in Python, a few microseconds per argument: a script call
    naming ten keys cost more to pack than to run. Mixed into whichever connection class the
    URL chose (TCP, TLS or Unix socket).
    """

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if (" " in name) if isinstance(name, str) else (b" " in name):  # "CONFIG GET": two arguments
            args = (*name.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # a bytearray (copied), or a value Redis cannot take (DataError)
            packed: list[bytes] = self._serializer.pack(*args)
            return packed

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        """A pipeline's commands, each packed the same way (redis-py's own loop would bypass `pack_command`)."""
        return [b"".join(self.pack_command(*command)) for command in commands]


class OneTimerPerRoundTrip:
    """A connection whose writes and reads take no timer of their own inside a round trip that has one deadline
    for all of it (`_AutoPipeline._bounded`); elsewhere (blocking reads, pub/sub) they keep redis-py's.
    A write bounded alone uses a timer rather than redis-py's `asyncio.wait_for`, which makes a task per write."""

    async def send_packed_command(self, command: bytes | str | Iterable[bytes], check_health: bool = True) -> None:
        if not self.is_connected:  # type: ignore[attr-defined]
            await self.connect_check_health(check_health=False)  # type: ignore[attr-defined]
        if check_health:
            await self.check_health()  # type: ignore[attr-defined]
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        writer = self._writer  # type: ignore[attr-defined]
        try:
            async with asyncio.timeout(None if _ONE_DEADLINE.get() else self.socket_timeout):  # type: ignore[attr-defined]
                writer.writelines(command)
                await writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as e:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise RedisConnectionError(f"Error while writing to socket: {e}") from e
        except BaseException:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]  # part of it may have gone out
            raise

    async def read_response(self, disable_decoding: bool = False, timeout: float | None = None, **options: Any) -> Any:
        if timeout is not None or options or not _ONE_DEADLINE.get():
            return await super().read_response(disable_decoding, timeout, **options)  # type: ignore[misc]
        # A reply of a round trip under one deadline: redis-py's own steps, without a timer.
        try:
            response = await self._read_response_from_parser(disable_decoding=disable_decoding)  # type: ignore[attr-defined]
        except OSError as e:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise RedisConnectionError(f"Error while reading from Redis: {e.args}") from e
        except BaseException:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]  # its reply may still come
            raise
        if self.health_check_interval:  # type: ignore[attr-defined]
            self.next_health_check = asyncio.get_running_loop().time() + self.health_check_interval  # type: ignore[attr-defined]
        if isinstance(response, ResponseError):
            raise response from None
        return response


class ReconnectsWhenStale:
    """A pooled connection that has sat idle past the health-check interval is checked with a PING
    before it carries a command; if the PING fails (Redis restarted or failed over meanwhile), the
    connection is made anew once and the command goes out on it. Without this, each connection left
    in the pool from before a restart failed one request with a 503. Only the PING is ever repeated,
    never a command; a Redis that is really down still fails the request at once."""

    async def check_health(self) -> None:
        try:
            await super().check_health()  # type: ignore[misc]
        except (RedisConnectionError, RedisTimeoutError, OSError):
            await self.disconnect()  # type: ignore[attr-defined]
            await self.connect_check_health(check_health=False)  # type: ignore[attr-defined]


def _tune_connections(client: Redis) -> None:
    pool = client.connection_pool
    base = pool.connection_class
    if issubclass(base, ReconnectsWhenStale):
        return
    mixins: tuple[type, ...] = (ReconnectsWhenStale, OneTimerPerRoundTrip)
    if HIREDIS_AVAILABLE:
        mixins += (PackedInC,)
    pool.connection_class = type(base.__name__, (*mixins, base), {})


def connect(url: str, *, cluster: bool = False, batching: bool = True) -> RedisClient:
    """A client with short timeouts: a stalled Redis must become a 503, not a hung request."""
    options: dict[str, Any] = {
        "socket_connect_timeout": 2.0,
        "socket_timeout": 2.0,
        # A connection idle this long is PINGed before use (and made anew if Redis restarted meanwhile);
        # under load connections are never idle that long, so the PING costs nothing there.
        "health_check_interval": 2,
    }
    if cluster:
        return RedisCluster.from_url(url, **options)
    factory = BatchingRedis if batching else Redis
    client = factory.from_url(url, max_connections=256, **options)
    _tune_connections(client)
    return client


class translate_errors:  # lower case: it reads as the function it was, `async with translate_errors():`
    """Redis failures as `Unavailable`: a stalled or refusing Redis becomes a 503 or a tool error, never a 500.

    A class rather than `@asynccontextmanager`: it wraps every Redis call, and a generator-based
    context manager costs several microseconds more each time."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
            raise Unavailable("the data store is unavailable") from exc
        if isinstance(exc, RedisError):
            raise Unavailable("the data store refused the operation") from exc
