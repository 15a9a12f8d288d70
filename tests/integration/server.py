"""Run Hermes for real: uvicorn on a loopback port, in a thread of the test process.

In-process so that tests can observe the app (count SQL statements, read its log
records); still real HTTP over a real socket, so clients see exactly what a
deployment would serve.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
import uvicorn

from hermes.entrypoints.http.app import make_app
from hermes.entrypoints.settings import Settings
from tests.support import ADMIN_TOKEN, free_port, unique_email


class HermesServer:
    def __init__(self, settings: Settings, env: Mapping[str, str] | None = None, *overrides: Any) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = make_app(settings, *overrides, env=dict(env or {}))
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            loop="asyncio",
            lifespan="on",
            log_level="warning",
            access_log=False,
            proxy_headers=False,  # as `hermes serve`: X-Forwarded-For is Hermes's to judge
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"hermes-{self.port}", daemon=True)
        self.startup_failed = False

    def _run(self) -> None:
        try:
            self._server.run()
        except SystemExit:  # uvicorn's answer to a failing lifespan start-up; start() reports it
            self.startup_failed = True

    def start(self) -> HermesServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("Hermes did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> HermesServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, api_key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"x-api-key": api_key} if api_key else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def admin(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)

    async def create_customer(self, email: str | None = None, plan: str = "starter") -> dict[str, Any]:
        # One customer per email, and tests share a database: each call gets its own address.
        email = unique_email(email or "owner@example.com")
        async with self.admin() as admin:
            reply = await admin.post("/admin/customers", json={"email": email, "plan": plan})
            assert reply.status_code == 201, reply.text
            created: dict[str, Any] = reply.json()
            return created
