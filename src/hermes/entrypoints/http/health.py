"""Liveness and readiness probes."""

from __future__ import annotations

from dishka.integrations.litestar import FromDishka, inject
from litestar import Response, get

from hermes.application.ports.health import Infrastructure
from hermes.entrypoints.http.schemas import Health


@get("/healthz", tags=["probes"], description="Liveness: the process answers.")
async def healthz() -> Health:
    return Health(status="ok")


@get("/readyz", tags=["probes"], description="Readiness: the database and Redis answer within 2 s.")
@inject
async def readyz(probe: FromDishka[Infrastructure]) -> Response[Health]:
    checks = await probe.check()
    ready = all(v == "ok" for v in checks.values())
    return Response(
        Health(status="ok" if ready else "unavailable", checks=checks),
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "5"},
    )
