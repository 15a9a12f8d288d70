"""Embedded mode's OAuth stores in the SQL database (the Redis ones, with expiry as a column).

Rows past `expires_at` are invisible to every read; now and then an insert also
deletes them, so the tables do not grow without bound.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Table, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hermes.adapters.sql.engine import to_db_time, translate_errors
from hermes.adapters.sql.tables import oauth_clients, oauth_epochs, oauth_grants, oauth_requests, oauth_tokens
from hermes.application.ports.oauth import AuthorizationStore, GrantStore, OAuthClientStore
from hermes.domain.oauth import Grant, IssuedCode, IssuedToken, OAuthClient, PendingAuthorization, TokenKind

_encode = msgspec.json.Encoder().encode
_CONSENT, _CODE = "consent", "code"
_PURGE_ONE_IN = 32


def _now() -> datetime:
    return to_db_time(datetime.now(UTC))


def _until(ttl: int) -> datetime:
    return _now() + timedelta(seconds=ttl)


def _decode(raw: Any, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(bytes(raw), type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


async def _maybe_purge(conn: AsyncConnection, table: Table) -> None:
    if secrets.randbelow(_PURGE_ONE_IN) == 0:
        await conn.execute(delete(table).where(table.c.expires_at <= _now()))


class SqlOAuthClientStore(OAuthClientStore):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, client: OAuthClient, ttl: int) -> None:
        values = {"record": _encode(client), "expires_at": _until(ttl)}
        async with translate_errors(), self._engine.begin() as conn:
            await _maybe_purge(conn, oauth_clients)
            changed = await conn.execute(
                update(oauth_clients).where(oauth_clients.c.client_id == client.client_id).values(**values)
            )
            if changed.rowcount == 0:
                await conn.execute(insert(oauth_clients).values(client_id=client.client_id, **values))

    async def get(self, client_id: str) -> OAuthClient | None:
        query = select(oauth_clients.c.record).where(
            oauth_clients.c.client_id == client_id, oauth_clients.c.expires_at > _now()
        )
        async with translate_errors(), self._engine.connect() as conn:
            raw = (await conn.execute(query)).scalar()
        return None if raw is None else _decode(raw, OAuthClient)

    async def keep(self, client_id: str, ttl: int) -> None:
        until = _until(ttl)
        async with translate_errors(), self._engine.begin() as conn:
            await conn.execute(
                update(oauth_clients)
                .where(
                    oauth_clients.c.client_id == client_id,
                    oauth_clients.c.expires_at > _now(),
                    oauth_clients.c.expires_at < until,
                )
                .values(expires_at=until)
            )


class SqlAuthorizationStore(AuthorizationStore):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def _live(self, digest: str, kind: str) -> Any:
        return and_(
            oauth_requests.c.digest == digest, oauth_requests.c.kind == kind, oauth_requests.c.expires_at > _now()
        )

    async def _insert(self, digest: str, kind: str, record: bytes, ttl: int) -> None:
        async with translate_errors(), self._engine.begin() as conn:
            await _maybe_purge(conn, oauth_requests)
            await conn.execute(
                insert(oauth_requests).values(
                    digest=digest, kind=kind, record=record, redeemed=False, expires_at=_until(ttl)
                )
            )

    async def _record(self, digest: str, kind: str) -> bytes | None:
        async with translate_errors(), self._engine.connect() as conn:
            raw = (await conn.execute(select(oauth_requests.c.record).where(self._live(digest, kind)))).scalar()
        return None if raw is None else bytes(raw)

    async def open(self, request_digest: str, pending: PendingAuthorization, ttl: int) -> None:
        await self._insert(request_digest, _CONSENT, _encode(pending), ttl)

    async def pending(self, request_digest: str) -> PendingAuthorization | None:
        raw = await self._record(request_digest, _CONSENT)
        return None if raw is None else _decode(raw, PendingAuthorization)

    async def update(self, request_digest: str, pending: PendingAuthorization) -> bool:
        async with translate_errors(), self._engine.begin() as conn:
            changed = await conn.execute(
                update(oauth_requests).where(self._live(request_digest, _CONSENT)).values(record=_encode(pending))
            )
        return changed.rowcount > 0

    async def close(self, request_digest: str) -> PendingAuthorization | None:
        async with translate_errors(), self._engine.begin() as conn:
            raw = (
                await conn.execute(select(oauth_requests.c.record).where(self._live(request_digest, _CONSENT)))
            ).scalar()
            if raw is None:
                return None
            # Of two concurrent closes only one deletes the row, and only that one gets the request.
            taken = await conn.execute(delete(oauth_requests).where(self._live(request_digest, _CONSENT)))
        return _decode(raw, PendingAuthorization) if taken.rowcount == 1 else None

    async def issue_code(self, code_digest: str, code: IssuedCode, ttl: int) -> None:
        await self._insert(code_digest, _CODE, _encode(code), ttl)

    async def code(self, code_digest: str) -> IssuedCode | None:
        raw = await self._record(code_digest, _CODE)
        return None if raw is None else _decode(raw, IssuedCode)

    async def redeem_code(self, code_digest: str) -> tuple[IssuedCode, bool] | None:
        async with translate_errors(), self._engine.begin() as conn:
            marked = await conn.execute(
                update(oauth_requests)
                .where(self._live(code_digest, _CODE), oauth_requests.c.redeemed.is_(False))
                .values(redeemed=True)
            )
            raw = (await conn.execute(select(oauth_requests.c.record).where(self._live(code_digest, _CODE)))).scalar()
        if raw is None:
            return None
        code = _decode(raw, IssuedCode)
        return None if code is None else (code, marked.rowcount == 1)


class SqlGrantStore(GrantStore):
    """Grants and tokens; also the SessionRevoker that deactivation and key rotation call."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @staticmethod
    def _current_epoch(customer_id: str) -> Any:
        return func.coalesce(
            select(oauth_epochs.c.epoch).where(oauth_epochs.c.customer_id == customer_id).scalar_subquery(), 0
        )

    async def epoch(self, customer_id: str) -> int:
        async with translate_errors(), self._engine.connect() as conn:
            value = (
                await conn.execute(select(oauth_epochs.c.epoch).where(oauth_epochs.c.customer_id == customer_id))
            ).scalar()
        return int(value or 0)

    async def save_grant(self, grant: Grant, ttl: int) -> None:
        key = and_(oauth_grants.c.customer_id == grant.customer_id, oauth_grants.c.grant_id == grant.grant_id)
        values = {"record": _encode(grant), "epoch": grant.epoch, "expires_at": _until(ttl)}
        for _ in range(2):
            async with translate_errors():
                try:
                    async with self._engine.begin() as conn:
                        await _maybe_purge(conn, oauth_grants)
                        if (await conn.execute(update(oauth_grants).where(key).values(**values))).rowcount == 0:
                            await conn.execute(
                                insert(oauth_grants).values(
                                    customer_id=grant.customer_id, grant_id=grant.grant_id, **values
                                )
                            )
                    return
                except IntegrityError:
                    continue  # created concurrently: update it instead

    async def _live_grants(self, customer_id: str, grant_id: str | None) -> list[Grant]:
        query = select(oauth_grants.c.record).where(
            oauth_grants.c.customer_id == customer_id,
            oauth_grants.c.expires_at > _now(),
            oauth_grants.c.epoch == self._current_epoch(customer_id),
        )
        if grant_id is not None:
            query = query.where(oauth_grants.c.grant_id == grant_id)
        async with translate_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(oauth_grants.c.grant_id))).all()
        found = [_decode(r.record, Grant) for r in rows]
        return [g for g in found if g is not None]

    async def grant(self, customer_id: str, grant_id: str) -> Grant | None:
        found = await self._live_grants(customer_id, grant_id)
        return found[0] if found else None

    async def grants(self, customer_id: str) -> list[Grant]:
        return await self._live_grants(customer_id, None)

    async def revoke_grant(self, customer_id: str, grant_id: str) -> bool:
        async with translate_errors(), self._engine.begin() as conn:
            result = await conn.execute(
                delete(oauth_grants).where(
                    oauth_grants.c.customer_id == customer_id, oauth_grants.c.grant_id == grant_id
                )
            )
        return result.rowcount > 0

    async def revoke_customer(self, customer_id: str) -> None:
        for _ in range(3):
            async with translate_errors():
                try:
                    async with self._engine.begin() as conn:
                        moved = await conn.execute(
                            update(oauth_epochs)
                            .where(oauth_epochs.c.customer_id == customer_id)
                            .values(epoch=oauth_epochs.c.epoch + 1)
                        )
                        if moved.rowcount == 0:
                            await conn.execute(insert(oauth_epochs).values(customer_id=customer_id, epoch=1))
                        await conn.execute(delete(oauth_grants).where(oauth_grants.c.customer_id == customer_id))
                    return
                except IntegrityError:
                    continue  # the epoch row was created concurrently: move it on instead

    async def put_token(self, token_digest: str, kind: TokenKind, token: IssuedToken, ttl: int) -> None:
        async with translate_errors(), self._engine.begin() as conn:
            await _maybe_purge(conn, oauth_tokens)
            await conn.execute(
                insert(oauth_tokens).values(
                    digest=token_digest, kind=kind.value, record=_encode(token), used=False, expires_at=_until(ttl)
                )
            )

    def _live_token(self, token_digest: str, kind: TokenKind) -> Any:
        return and_(
            oauth_tokens.c.digest == token_digest,
            oauth_tokens.c.kind == kind.value,
            oauth_tokens.c.expires_at > _now(),
        )

    async def token(self, token_digest: str, kind: TokenKind) -> IssuedToken | None:
        async with translate_errors(), self._engine.connect() as conn:
            raw = (
                await conn.execute(select(oauth_tokens.c.record).where(self._live_token(token_digest, kind)))
            ).scalar()
        return None if raw is None else _decode(raw, IssuedToken)

    async def use_refresh(self, token_digest: str) -> bool:
        async with translate_errors(), self._engine.begin() as conn:
            marked = await conn.execute(
                update(oauth_tokens)
                .where(self._live_token(token_digest, TokenKind.REFRESH), oauth_tokens.c.used.is_(False))
                .values(used=True)
            )
        return marked.rowcount == 1
