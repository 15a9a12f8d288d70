"""The `hermes` command: serve, init, db upgrade, customers, keys, inbound."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import secrets
import shutil
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from pydantic import ValidationError

from hermes.adapters.crypto.aes_gcm import generate_key
from hermes.domain.errors import HermesError

T = TypeVar("T")


def _settings() -> Any:
    from hermes.entrypoints.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        messages = "; ".join(str(e.get("msg", "")) for e in exc.errors())
        raise click.ClickException(f"invalid settings: {messages}") from None


def _with_container(use: Callable[[Any], Awaitable[T]]) -> T:
    """Run `use(container)` against the configured stores, then close everything."""
    from hermes.entrypoints.ioc import make_container
    from hermes.entrypoints.settings import environment

    settings = _settings()
    _require_database(settings.database_url)

    async def main() -> T:
        container = make_container(settings, environment())
        try:
            return await use(container)
        finally:
            await container.close()

    try:
        return asyncio.run(main())
    except HermesError as exc:
        raise click.ClickException(exc.detail) from None
    except ValueError as exc:  # keyring and settings errors carry their own fix
        raise click.ClickException(str(exc)) from None


def _require_database(url: str) -> None:
    """An SQLite file that does not exist means the wrong folder, not a database to create empty."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    path = Path(parsed.database).resolve()
    if not path.exists():
        raise click.ClickException(
            f"no Hermes database at {path}; run from the project folder or set HERMES_DATABASE_URL"
            " (a new one is made by `hermes db upgrade`)"
        )


@click.group()
@click.version_option(package_name="hermes", message="hermes %(version)s")
def main() -> None:
    """Hermes: AI agents sending and reading messages on customers' own accounts."""


@main.command()
@click.option("--env-file", default=".env", show_default=True, type=click.Path(dir_okay=False))
def init(env_file: str) -> None:
    """Create a .env with a fresh encryption key and admin token, once; prints them on creation."""
    path = Path(env_file)
    existing = path.read_text() if path.exists() else ""
    added = []
    if "HERMES_ENCRYPTION_KEYS=" not in existing:
        added.append(f"HERMES_ENCRYPTION_KEYS=k1:{generate_key()}")
    if "HERMES_ADMIN_TOKEN=" not in existing:
        added.append(f"HERMES_ADMIN_TOKEN={secrets.token_urlsafe(32)}")
    if not added:
        click.echo(f"{env_file} already holds an encryption key and admin token", err=True)
        return
    with path.open("a") as handle:
        if existing and not existing.endswith("\n"):
            handle.write("\n")
        handle.write("\n".join(added) + "\n")
    path.chmod(0o600)
    click.echo(f"wrote {env_file} (keep it secret, it is git-ignored):")
    for line in added:
        click.echo("  " + line)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(min=1), help="more than 1 needs HERMES_REDIS_URL"
)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the HTTP API, webhooks and /mcp with uvicorn."""
    import uvicorn

    from hermes.adapters.crypto.aes_gcm import parse_keyring

    settings = _settings()
    try:
        parse_keyring(settings.encryption_keys)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.embedded and workers > 1:
        # Each worker would keep its own customer cache and rate-limit counters: a deactivated
        # customer would keep working in the other workers and limits would multiply.
        raise click.ClickException(
            f"--workers {workers} needs HERMES_REDIS_URL: embedded mode keeps its customer cache and rate "
            "limits in process, so a deactivation or key rotation would reach only one worker and every "
            "limit would be multiplied by the worker count. Run one worker, or set HERMES_REDIS_URL."
        )
    _refuse_busy_port(host, port)
    _settle_public_url(settings, host, port)
    mode = "embedded (SQL only)" if settings.embedded else "Redis + SQL"
    _say(settings, logging.INFO, f"Hermes on http://{host}:{port} ({mode}); API docs at /schema, MCP at /mcp")
    with _metrics_directory(workers):
        uvicorn.run(
            "hermes.entrypoints.http.app:make_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
            # X-Forwarded-For is believed only from HERMES_TRUSTED_PROXIES (http/client_address.py).
            proxy_headers=False,
            timeout_graceful_shutdown=10,
            # JSON logs: uvicorn's own lines go through Hermes's handler too, instead of its text format.
            log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        )


def _say(settings: Any, level: int, text: str) -> None:
    """A start-up line for the operator: plain text, or a JSON log line under HERMES_LOG_FORMAT=json."""
    if settings.log_format != "json":
        click.echo(text if level < logging.WARNING else f"WARNING: {text}", err=True)
        return
    from hermes.entrypoints.logs import configure_logging

    configure_logging(settings.log_level, "json")
    logging.getLogger("hermes.serve").log(level, text)


def _refuse_busy_port(host: str, port: int) -> None:
    """Say so before anything claims to be serving, instead of uvicorn's trace after it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"port {port} is in use (on {host}): stop what holds it, or choose another with --port"
                ) from None
            raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def _is_loopback(host: str) -> bool:
    return host in _LOOPBACK_NAMES or host.startswith("127.")


def _settle_public_url(settings: Any, host: str, port: int) -> None:
    """HERMES_PUBLIC_URL is what OAuth clients are told to call: default it to the address served, and warn
    when it is set to a local address that cannot be this one (another port, say)."""
    if "public_url" not in settings.model_fields_set:
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host  # noqa: S104
        if ":" in shown and not shown.startswith("["):
            shown = f"[{shown}]"
        os.environ["HERMES_PUBLIC_URL"] = f"http://{shown}:{port}"  # read by the app's settings in each worker
        return
    parts = urlsplit(settings.public_url)
    try:
        public_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        public_port = None
    public_host = parts.hostname or ""
    if _is_loopback(public_host) and public_port != port:
        _say(
            settings,
            logging.WARNING,
            f"HERMES_PUBLIC_URL is {settings.public_url}, but Hermes serves on {host}:{port}; "
            "OAuth clients will be sent to the wrong address. Unset it (to default to the served address) "
            "or make it match.",
        )


@contextmanager
def _metrics_directory(workers: int) -> Iterator[None]:
    """Several workers keep their metrics in files of one directory (prometheus-client's multi-process mode),
    made fresh for this run and removed after it; one worker keeps them in memory."""
    variable = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's name; read when the workers import it
    if workers <= 1 or os.environ.get(variable):
        yield
        return
    directory = tempfile.mkdtemp(prefix="hermes-metrics-")
    os.environ[variable] = directory
    try:
        yield
    finally:
        os.environ.pop(variable, None)
        shutil.rmtree(directory, ignore_errors=True)


@main.group()
def db() -> None:
    """Database schema."""


@db.command()
def upgrade() -> None:
    """Apply every Alembic migration to HERMES_DATABASE_URL, and bring stored routes to the current form."""
    from hermes.adapters.sql.migrate import upgrade_url

    settings = _settings()
    try:
        asyncio.run(upgrade_url(settings.database_url))
    except Exception as exc:  # connection errors: one line, not a trace
        raise click.ClickException(f"migration failed: {type(exc).__name__}: {exc}") from None
    click.echo("database is at the latest schema", err=True)
    if settings.redis_url:
        try:
            moved = asyncio.run(_unbrace_routes(settings.redis_url, settings.redis_cluster))
        except Exception as exc:
            raise click.ClickException(f"route keys not migrated: {type(exc).__name__}: {exc}") from None
        click.echo(f"redis route keys: {moved} moved to the wa_phone_id:<id> spelling", err=True)
    named = _with_container(_name_account_routes)
    click.echo(f"inbound routes: {named} moved to the account that uses them", err=True)


async def _name_account_routes(container: Any) -> int:
    from hermes.application.use_cases.name_account_routes import NameAccountRoutes

    name_them = await container.get(NameAccountRoutes)
    moved: int = await name_them()
    return moved


async def _unbrace_routes(url: str, cluster: bool) -> int:
    from hermes.adapters.redis.account_routes import RedisAccountRoutes
    from hermes.adapters.redis.client import connect

    redis = connect(url, cluster=cluster)
    try:
        return await RedisAccountRoutes(redis).unbrace()
    finally:
        await redis.aclose()


@main.group()
def customers() -> None:
    """Customers (tenants)."""


@customers.command("create")
@click.option("--email", required=True)
@click.option("--plan", required=True, type=click.Choice(["free", "starter", "pro", "enterprise"]))
def create_customer(email: str, plan: str) -> None:
    """Create a customer; prints JSON with its API key (shown this once)."""
    from hermes.application.use_cases.create_customer import CreateCustomer, NewCustomer

    async def use(container: Any) -> NewCustomer:
        create = await container.get(CreateCustomer)
        result: NewCustomer = await create(email, plan)
        return result

    made = _with_container(use)
    c = made.customer
    click.echo(
        json.dumps({"id": c.id, "apiKey": made.api_key, "email": c.email, "plan": c.plan.value, "active": c.active})
    )


@customers.command("list")
@click.option("--limit", default=100, show_default=True, type=int)
@click.option("--after", default=None, help="continue after this customer id")
def list_customers(limit: int, after: str | None) -> None:
    """List customers as JSON lines (never their keys)."""
    from hermes.application.use_cases.get_customer import ListCustomers
    from hermes.domain.customer import Customer

    async def use(container: Any) -> list[Customer]:
        list_them = await container.get(ListCustomers)
        found: list[Customer] = await list_them(limit, after)
        return found

    for c in _with_container(use):
        click.echo(_customer_json(c))


def _customer_json(c: Any) -> str:
    """A customer as the operator API shows it (never its key)."""
    return json.dumps(
        {
            "id": c.id,
            "email": c.email,
            "plan": c.plan.value,
            "active": c.active,
            "createdAt": c.created_at.isoformat(),
            "apiKeyPrefix": c.api_key_prefix,
        }
    )


@customers.command("show")
@click.argument("customer_id")
def show_customer(customer_id: str) -> None:
    """Show one customer as JSON (never its key)."""
    from hermes.application.use_cases.get_customer import GetCustomer

    click.echo(_customer_json(_run_use_case(GetCustomer, customer_id)))


@customers.command("deactivate")
@click.argument("customer_id")
def deactivate_customer(customer_id: str) -> None:
    """Deactivate a customer: its API key and OAuth sessions stop working at once; prints it as JSON."""
    from hermes.application.use_cases.deactivate_customer import DeactivateCustomer

    click.echo(_customer_json(_run_use_case(DeactivateCustomer, customer_id)))


@customers.command("rotate-key")
@click.argument("customer_id")
def rotate_customer_key(customer_id: str) -> None:
    """Issue a new API key for a customer (the old one stops working); prints JSON with it, shown this once."""
    from hermes.application.use_cases.rotate_api_key import RotateApiKey

    click.echo(json.dumps({"id": customer_id, "apiKey": _run_use_case(RotateApiKey, customer_id)}))


def _run_use_case(use_case: type[Any], customer_id: str) -> Any:
    """Call one operator use case on a customer, with the container the command line builds."""

    async def use(container: Any) -> Any:
        return await (await container.get(use_case))(customer_id)

    return _with_container(use)


@main.group()
def keys() -> None:
    """Encryption keys."""


@keys.command("rotate")
def rotate_keys() -> None:
    """Re-encrypt every stored credential under the first key of HERMES_ENCRYPTION_KEYS (resumable)."""
    from hermes.application.use_cases.rotate_encryption_keys import RotateEncryptionKeys, RotationReport

    async def use(container: Any) -> RotationReport:
        rotate = await container.get(RotateEncryptionKeys)
        report: RotationReport = await rotate()
        return report

    r = _with_container(use)
    click.echo(
        json.dumps(
            {
                "rotated": r.rotated,
                "alreadyCurrent": r.already_current,
                "changedMeanwhile": r.changed_meanwhile,
                "unreadable": r.unreadable,
                "callbackSecretsRotated": r.callback_secrets_rotated,
            }
        )
    )
    if r.unreadable:
        click.echo(f"{r.unreadable} credential(s) could not be opened with any configured key", err=True)
        sys.exit(1)


@main.group()
def inbound() -> None:
    """Inbound webhooks: dead letters and numbers no customer owns."""


@inbound.group("dead-letters")
def dead_letters() -> None:
    """Webhook events that could not be routed (malformed, or failed on every delivery)."""


@dead_letters.command("list")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
def list_dead_letters(limit: int) -> None:
    """Print dead letters as JSON lines, oldest first (the body as text, cut at 2,000 characters)."""
    from hermes.application.ports.inbound import DeadLetter, InboundQueue

    async def use(container: Any) -> list[DeadLetter]:
        queue = await container.get(InboundQueue)
        found: list[DeadLetter] = await queue.dead_letters(limit)
        return found

    for d in _with_container(use):
        click.echo(
            json.dumps(
                {
                    "id": d.id,
                    "eventId": d.event_id,
                    "platform": d.platform.value,
                    "receivedAt": d.received_at.isoformat(),
                    "failedAt": d.failed_at.isoformat(),
                    "deliveries": d.deliveries,
                    "reason": d.reason,
                    "bytes": len(d.body),
                    "body": d.body[:2000].decode("utf-8", errors="replace"),
                }
            )
        )


@dead_letters.command("replay")
@click.option("--id", "ids", multiple=True, help="a dead letter id from `list` (repeatable)")
@click.option("--all", "replay_all", is_flag=True, help="replay every dead letter")
def replay_dead_letters(ids: tuple[str, ...], replay_all: bool) -> None:
    """Put dead letters back on the inbound queue to be routed again (duplicates are still dropped)."""
    from hermes.application.ports.inbound import InboundQueue

    if bool(ids) == replay_all:
        raise click.UsageError("give --id (one or more) or --all")

    async def use(container: Any) -> int:
        queue = await container.get(InboundQueue)
        count: int = await queue.replay(None if replay_all else list(ids))
        return count

    click.echo(json.dumps({"replayed": _with_container(use)}))


@inbound.command("unrouted")
def unrouted() -> None:
    """Business numbers that received events but belong to no customer, as JSON lines."""
    from datetime import datetime

    from hermes.application.ports.inbound import UnroutedNumbers
    from hermes.domain.platform import Platform

    async def use(container: Any) -> list[tuple[Platform, str, int, datetime]]:
        numbers = await container.get(UnroutedNumbers)
        found: list[tuple[Platform, str, int, datetime]] = await numbers.counts()
        return found

    for platform, number, items, last_seen in _with_container(use):
        seen = last_seen.isoformat()
        click.echo(json.dumps({"platform": platform.value, "number": number, "items": items, "lastSeen": seen}))
