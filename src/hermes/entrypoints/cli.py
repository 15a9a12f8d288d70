"""The `hermes` command: serve, init, db upgrade, customers, keys, inbound."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

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


@click.group()
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
    mode = "embedded (SQL only)" if settings.embedded else "Redis + SQL"
    click.echo(f"Hermes on http://{host}:{port} ({mode}); OpenAPI at /schema, MCP at /mcp", err=True)
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
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command()
def upgrade() -> None:
    """Apply every Alembic migration to HERMES_DATABASE_URL."""
    from hermes.adapters.sql.migrate import upgrade_url

    settings = _settings()
    try:
        asyncio.run(upgrade_url(settings.database_url))
    except Exception as exc:  # connection errors: one line, not a trace
        raise click.ClickException(f"migration failed: {type(exc).__name__}: {exc}") from None
    click.echo("database is at the latest schema", err=True)


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
        click.echo(
            json.dumps(
                {
                    "id": c.id,
                    "email": c.email,
                    "plan": c.plan.value,
                    "active": c.active,
                    "createdAt": c.created_at.isoformat(),
                    "apiKeyPrefix": c.api_key_prefix,
                }
            )
        )


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
