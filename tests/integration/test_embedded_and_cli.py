"""The newcomer's path: `hermes init`, `db upgrade`, `serve` on SQLite; a restart loses nothing.
And the operator CLI: customers create/list, keys rotate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.integration.conftest import OWN_REDIS_URL
from tests.support import free_port, whatsapp_credentials

HERMES = str(Path(sys.executable).with_name("hermes"))


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HERMES, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERMES_", "MCP_")) and "_DEFAULT_" not in k}
    env.update(extra)
    return env


class Served:
    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [HERMES, "serve", "--port", str(self.port)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = self.process.stdout.read() if self.process.stdout else ""
                raise RuntimeError(f"hermes serve did not start: {output}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=15)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def test_embedded_mode_keeps_connections_across_a_restart(workdir: Path, shared_graph: Any) -> None:
    env = clean_env(HERMES_WHATSAPP_API_BASE=shared_graph.api_base())  # WhatsApp connects are always verified
    init = run(["init"], workdir, env)
    assert init.returncode == 0, init.stderr
    assert "HERMES_ENCRYPTION_KEYS=k1:" in init.stdout
    dotenv = (workdir / ".env").read_text()
    admin_token = next(line.split("=", 1)[1] for line in dotenv.splitlines() if line.startswith("HERMES_ADMIN_TOKEN="))
    assert oct((workdir / ".env").stat().st_mode & 0o777) == "0o600"
    assert run(["init"], workdir, env).stdout == ""  # printed once, never again
    assert run(["db", "upgrade"], workdir, env).returncode == 0

    server = Served(workdir, env)
    try:
        admin = {"Authorization": f"Bearer {admin_token}"}
        created = httpx.post(
            f"{server.url}/admin/customers", json={"email": "e@example.com", "plan": "free"}, headers=admin
        ).json()
        key = {"x-api-key": created["apiKey"]}
        assert (
            httpx.post(f"{server.url}/api/connect/whatsapp", json=whatsapp_credentials(), headers=key).status_code
            == 200
        )
    finally:
        server.stop()
    assert (workdir / "var" / "hermes.db").exists()

    again = Served(workdir, env)
    try:
        connections = httpx.get(f"{again.url}/api/connections", headers=key).json()
    finally:
        again.stop()
    assert connections["connections"]["whatsapp"] is True


def test_cli_customers_and_key_rotation_on_mariadb(workdir: Path, mariadb_url: str) -> None:
    # Its own Redis database (emptied first): rotation scans every credential, and other tests use other keys.
    own_redis = OWN_REDIS_URL
    redis.Redis.from_url(own_redis).flushdb()
    old_keys = "old:" + "A" * 43 + "="
    env = clean_env(HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=own_redis, HERMES_ENCRYPTION_KEYS=old_keys)
    created = run(["customers", "create", "--email", "cli@example.com", "--plan", "pro"], workdir, env)
    assert created.returncode == 0, created.stderr
    customer = json.loads(created.stdout)
    assert customer["apiKey"].startswith("hms_")
    assert customer["plan"] == "pro"

    listed = [
        json.loads(line) for line in run(["customers", "list", "--limit", "1000"], workdir, env).stdout.splitlines()
    ]
    mine = next(c for c in listed if c["id"] == customer["id"])
    assert "apiKey" not in mine
    assert customer["apiKey"] not in json.dumps(listed)

    bad = run(["customers", "create", "--email", "nope", "--plan", "pro"], workdir, env)
    assert bad.returncode != 0
    assert "email" in bad.stderr
    assert "Traceback" not in bad.stderr

    # Store a credential under the old key through the real server, then rotate to a new first key.
    server = Served(workdir, env)
    try:
        reply = httpx.post(
            f"{server.url}/api/connect/discord?verify=false",
            json={"botToken": "MTA.rotate.me"},
            headers={"x-api-key": customer["apiKey"]},
        )
        assert reply.status_code == 200
    finally:
        server.stop()

    rotated_env = {**env, "HERMES_ENCRYPTION_KEYS": "new:" + "B" * 43 + "=," + old_keys}
    first = run(["keys", "rotate"], workdir, rotated_env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["rotated"] >= 1
    second = json.loads(run(["keys", "rotate"], workdir, rotated_env).stdout)
    assert second["rotated"] == 0
    assert second["alreadyCurrent"] >= 1

    # Only the new key is needed now: the credential still opens (connections + a tool would use it).
    new_only = {**env, "HERMES_ENCRYPTION_KEYS": "new:" + "B" * 43 + "="}
    check = run(["keys", "rotate"], workdir, new_only)
    assert json.loads(check.stdout)["unreadable"] == 0, check.stdout


def test_serve_refuses_to_start_without_a_valid_encryption_key(workdir: Path) -> None:
    missing = run(["serve", "--port", str(free_port())], workdir, clean_env())
    assert missing.returncode != 0
    assert "HERMES_ENCRYPTION_KEYS" in missing.stderr
    malformed = run(["serve", "--port", str(free_port())], workdir, clean_env(HERMES_ENCRYPTION_KEYS="k1:short"))
    assert malformed.returncode != 0
    assert "HERMES_ENCRYPTION_KEYS" in malformed.stderr
    assert "Traceback" not in malformed.stderr


@pytest.mark.timeout(300)  # two CLI runs and two server starts, each a fresh Python process
def test_embedded_mode_keeps_an_account_that_needs_reauth_across_a_restart(workdir: Path) -> None:
    from tests.fakes.telegram import FakeTelegram

    with FakeTelegram() as telegram:
        env = clean_env(HERMES_TELEGRAM_API_BASE=telegram.base_url, HERMES_ALLOW_PRIVATE_NETWORKS="true")
        assert run(["init"], workdir, env).returncode == 0
        dotenv = (workdir / ".env").read_text()
        token = next(line.split("=", 1)[1] for line in dotenv.splitlines() if line.startswith("HERMES_ADMIN_TOKEN="))
        assert run(["db", "upgrade"], workdir, env).returncode == 0
        bot = telegram.add_bot()
        telegram.add_chat(bot, 4242)

        server = Served(workdir, env)
        try:
            admin = {"Authorization": f"Bearer {token}"}
            created = httpx.post(
                f"{server.url}/admin/customers", json={"email": "h@example.com", "plan": "free"}, headers=admin
            ).json()
            key = {"x-api-key": created["apiKey"]}
            assert httpx.post(f"{server.url}/api/connect/telegram", json={"botToken": bot}, headers=key).is_success
            telegram.revoke(bot)  # the owner revoked the bot: Telegram answers 401
            sent = httpx.post(
                f"{server.url}/api/tools/telegram_send_message", json={"chat_id": 4242, "text": "hi"}, headers=key
            )
            assert sent.status_code == 502, sent.text
            before = httpx.get(f"{server.url}/api/connections", headers=key).json()["accounts"]
        finally:
            server.stop()
        assert [(a["platform"], a["status"]) for a in before] == [("telegram", "needs_reauth")]

        again = Served(workdir, env)
        try:
            after = httpx.get(f"{again.url}/api/connections", headers=key).json()["accounts"]
        finally:
            again.stop()
    assert after == before  # status, error, times: all as the first process left them
    assert after[0]["lastError"] and after[0]["lastCheckedAt"] and after[0]["connectedAt"]
