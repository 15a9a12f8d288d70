"""Hermes as a real child process (`python -m uvicorn --factory ...make_app`), for tests that kill it.

The in-thread `HermesServer` cannot be SIGKILLed without taking pytest down with it;
this one can, and restarts on the same port with the same environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from hermes.entrypoints.settings import Settings
from tests.support import ADMIN_TOKEN, free_port, unique_email

_ALIASES = {name: field.validation_alias for name, field in Settings.model_fields.items()}


def settings_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment variables that reproduce `settings` in a child process."""
    env: dict[str, str] = {}
    for name, alias in _ALIASES.items():
        value: Any = getattr(settings, name)
        if value is None or not isinstance(alias, str):
            continue
        env[alias] = str(value).lower() if isinstance(value, bool) else str(value)
    for platform, base in settings.api_bases.items():
        env[f"HERMES_{platform.upper()}_API_BASE"] = base
    for name, value in vars(settings).items():  # model_copy(update={"telegram_api_base": ...})
        if name.endswith("_api_base") and isinstance(value, str):
            env[f"HERMES_{name.upper()}"] = value
    env.update(overrides)
    return env


class HermesProcess:
    def __init__(self, env: Mapping[str, str], workdir: Path) -> None:
        self.env = dict(env)
        self.workdir = workdir  # holds no .env: only the variables given apply
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process it records

    def start(self, **env: str) -> HermesProcess:
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "hermes.entrypoints.http.app:make_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("HERMES_", "MCP_API_KEY"))}
        self._proc = subprocess.Popen(
            cmd, env={**clean, **self.env, **env}, cwd=self.workdir, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Hermes did not start:\n" + self.output())
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no goodbye."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(timeout=10)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def client(self, api_key: str | None = None) -> httpx.AsyncClient:
        headers = {"x-api-key": api_key} if api_key else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    async def create_customer(self, email: str | None = None, plan: str = "pro") -> dict[str, Any]:
        # One customer per email, and tests share a database: each call gets its own address.
        email = unique_email(email or "owner@example.com")
        async with httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        ) as admin:
            reply = await admin.post("/admin/customers", json={"email": email, "plan": plan})
            assert reply.status_code == 201, reply.text
            created: dict[str, Any] = reply.json()
            return created
