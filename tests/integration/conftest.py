"""Real MariaDB, real Redis, Hermes under uvicorn on loopback."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis as SyncRedis
from sqlalchemy import event
from sqlalchemy.engine import Engine

from hermes.adapters.sql.migrate import upgrade_url
from hermes.entrypoints.settings import Settings
from tests.integration.own_redis import OwnRedis
from tests.integration.server import HermesServer
from tests.support import make_settings

MARIADB_ROOT = "mysql+asyncmy://root@127.0.0.1:3306"
# Sessions run side by side (two checkouts) each pick their own database: HERMES_TEST_REDIS_URL.
REDIS_URL = os.environ.get("HERMES_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# A database that a test empties before it runs (FLUSHDB): never one that another session uses.
OWN_REDIS_URL = os.environ.get("HERMES_TEST_OWN_REDIS_URL", "redis://127.0.0.1:6379/3")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def _services() -> None:
    """Start MariaDB and Redis if a fresh machine has them stopped (as .ci/run does)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "ensure-services.sh")], check=True)


@pytest.fixture(scope="session", autouse=True)
def shared_graph() -> Iterator[Any]:
    """One fake Graph API for every server of the session that is not given its own.

    WhatsApp connects are always verified against Graph, so `HERMES_WHATSAPP_API_BASE`
    points here (settings and child processes read it from the environment) and
    `whatsapp_credentials` registers each number/token pair a test connects.
    """
    import os

    from tests.fakes.graph import FakeGraph
    from tests.support import WHATSAPP_GRAPHS

    with FakeGraph() as graph:
        previous = os.environ.get("HERMES_WHATSAPP_API_BASE")
        os.environ["HERMES_WHATSAPP_API_BASE"] = graph.api_base()
        WHATSAPP_GRAPHS.append(graph)
        yield graph
        WHATSAPP_GRAPHS.remove(graph)
        if previous is None:
            del os.environ["HERMES_WHATSAPP_API_BASE"]
        else:
            os.environ["HERMES_WHATSAPP_API_BASE"] = previous


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """A fresh database for this test session, migrated with Alembic like `hermes db upgrade`."""
    name = f"hermes_it_{secrets.token_hex(4)}"
    subprocess.run(["mysql", "-h", "127.0.0.1", "-u", "root", "-e", f"CREATE DATABASE {name}"], check=True)
    url = f"{MARIADB_ROOT}/{name}?charset=utf8mb4"
    asyncio.run(upgrade_url(url))
    yield url
    subprocess.run(["mysql", "-h", "127.0.0.1", "-u", "root", "-e", f"DROP DATABASE IF EXISTS {name}"], check=False)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A redis-server of the test's own, which it may stop and start."""
    server = OwnRedis(tmp_path / "redis")
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[SyncRedis]:
    client = SyncRedis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def settings(mariadb_url: str, redis_url: str) -> Settings:
    return make_settings(HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=redis_url)


@pytest.fixture
def hermes(settings: Settings) -> Iterator[HermesServer]:
    with HermesServer(settings) as server:
        yield server


@pytest.fixture
def start_hermes() -> Iterator[Callable[..., HermesServer]]:
    """Start extra servers (other settings, env, providers); all stopped after the test."""
    started: list[HermesServer] = []

    def start(settings: Settings, env: dict[str, str] | None = None, *overrides: Any) -> HermesServer:
        server = HermesServer(settings, env, *overrides).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


class SqlCounter:
    """Counts statements sent to any database by this process."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def reset(self) -> None:
        self.statements.clear()


@pytest.fixture
def sql_counter() -> Iterator[SqlCounter]:
    counter = SqlCounter()
    event.listen(Engine, "before_cursor_execute", counter)
    yield counter
    event.remove(Engine, "before_cursor_execute", counter)


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is still a record
            self.lines.append(str(record.msg))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def captured_logs() -> Iterator[LogCapture]:
    handler = LogCapture()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(exc_text)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    """The adapters' own Redis client (auto-pipelining), for contract suites."""
    from hermes.adapters.redis.client import connect

    client = connect(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["mariadb", "sqlite"])
async def engine(request: pytest.FixtureRequest, mariadb_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    """Each SQL backend the adapters run on: MariaDB (production) and SQLite (embedded), migrated."""
    from hermes.adapters.sql.engine import make_engine
    from hermes.adapters.sql.migrate import upgrade

    if request.param == "mariadb":
        engine = make_engine(mariadb_url)
    else:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/hermes.db")
        await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """One 3-master Redis Cluster for every cluster test of the session (started on first use)."""
    from tests.integration.redis_cluster import RedisClusterProcess

    with RedisClusterProcess() as running:
        yield running


@pytest.fixture
async def aio_redis(redis_url: str) -> AsyncIterator[Any]:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def mysql_dump(database_url: str) -> str:
    """Every row of every table, as text, to search for leaked secrets."""
    name = database_url.rsplit("/", 1)[1].split("?")[0]
    out = subprocess.run(
        ["mysqldump", "-h", "127.0.0.1", "-u", "root", "--skip-extended-insert", "--hex-blob=false", name],
        capture_output=True,
        text=True,
        errors="replace",
        check=True,
    )
    return out.stdout


def redis_dump(client: SyncRedis) -> bytes:
    """Every key and value in the test Redis database (pipelined: the database can be large)."""
    chunks: list[bytes] = []
    keys = list(client.scan_iter(count=5000))
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        with client.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.type(key)
            kinds = pipe.execute()
        with client.pipeline(transaction=False) as pipe:
            for key, kind in zip(batch, kinds, strict=True):
                {
                    b"string": lambda k: pipe.get(k),
                    b"hash": lambda k: pipe.hgetall(k),
                    b"stream": lambda k: pipe.xrange(k),
                    b"list": lambda k: pipe.lrange(k, 0, -1),
                    b"zset": lambda k: pipe.zrange(k, 0, -1),
                    b"set": lambda k: pipe.smembers(k),
                }.get(kind, lambda k: pipe.exists(k))(key)
            values = pipe.execute()
        chunks += batch
        chunks += [repr(v).encode() if not isinstance(v, bytes) else v for v in values]
    return b"\n".join(chunks)


__all__ = ["LogCapture", "SqlCounter", "mysql_dump", "redis_dump"]


@pytest.fixture(scope="session", autouse=True)
def secret_canary(mariadb_url: str, redis_url: str) -> Iterator[None]:
    """See tests/integration/canary.py: plants the canaries, then searches the whole session for them."""
    from tests.fakes.telegram import FakeTelegram
    from tests.integration.canary import CANARY_BOT_TOKEN, ResponseScanner, find_canaries

    logs = LogCapture()
    logs.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(exc_text)s"))
    logging.getLogger().addHandler(logs)
    scanner = ResponseScanner()
    scanner.install()
    with FakeTelegram() as telegram:
        telegram.add_bot(token=CANARY_BOT_TOKEN)
        telegram.add_chat(CANARY_BOT_TOKEN, 1001)
        settings = make_settings(
            HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=redis_url, HERMES_TELEGRAM_API_BASE=telegram.base_url
        )
        with HermesServer(settings) as server:
            asyncio.run(_plant_canaries(server, scanner, telegram))
    yield
    scanner.uninstall()
    logging.getLogger().removeHandler(logs)
    client = SyncRedis.from_url(redis_url)
    try:
        stores = {"redis": redis_dump(client), "database": mysql_dump(mariadb_url), "logs": logs.text}
    finally:
        client.close()
    leaks = find_canaries(stores, scanner.canaries) + scanner.leaks
    assert scanner.scanned > 0
    assert not leaks, "secret canary leaked: " + "; ".join(leaks[:20])


async def _plant_canaries(server: HermesServer, scanner: Any, telegram: Any) -> None:
    from tests.integration.canary import CANARY_BOT_TOKEN

    customer = await server.create_customer("canary@example.com")
    scanner.canaries.append(customer["apiKey"])
    async with server.client(customer["apiKey"]) as client:
        connected = await client.post("/api/connect/telegram?verify=true", json={"botToken": CANARY_BOT_TOKEN})
        assert connected.status_code == 200, connected.text
        sent = await client.post("/api/tools/telegram_send_message", json={"chat_id": 1001, "text": "canary"})
        assert sent.status_code == 200, sent.text
        telegram.unauthorized_next(1)
        refused = await client.post("/api/tools/telegram_send_message", json={"chat_id": 1001, "text": "again"})
        assert refused.status_code == 502, refused.text
        bad = await client.post("/api/connect/telegram", json={"botToken": CANARY_BOT_TOKEN, "extra": 1})
        assert bad.status_code == 400
