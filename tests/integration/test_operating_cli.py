"""The operator's command line and `hermes serve` as a new user meets them: version, customer commands,
a wrong folder, a busy port, the public URL, and metrics added up across several workers."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.integration.test_embedded_and_cli import HERMES, Served, clean_env, run
from tests.support import free_port, new_keyring

ROOT = Path(__file__).resolve().parents[2]


def test_version() -> None:
    shown = run(["--version"], ROOT, clean_env())
    assert shown.returncode == 0
    assert re.fullmatch(r"hermes \d+\.\d+\.\d+\S*\n", shown.stdout)


def test_customer_commands_and_one_customer_per_email(tmp_path: Path) -> None:
    env = clean_env(HERMES_ENCRYPTION_KEYS=new_keyring())
    assert run(["db", "upgrade"], tmp_path, env).returncode == 0
    made = run(["customers", "create", "--email", "Ops@Example.com", "--plan", "pro"], tmp_path, env)
    assert made.returncode == 0, made.stderr
    customer = json.loads(made.stdout)

    again = run(["customers", "create", "--email", "ops@example.com", "--plan", "free"], tmp_path, env)
    assert again.returncode == 1
    assert "a customer with the email ops@example.com already exists" in again.stderr
    assert "Traceback" not in again.stderr

    shown = json.loads(run(["customers", "show", customer["id"]], tmp_path, env).stdout)
    assert shown["email"] == "ops@example.com" and shown["active"] is True and "apiKey" not in shown

    rotated = run(["customers", "rotate-key", customer["id"]], tmp_path, env)
    assert rotated.returncode == 0, rotated.stderr
    new_key = json.loads(rotated.stdout)["apiKey"]
    assert new_key.startswith("hms_") and new_key != customer["apiKey"]
    assert (
        json.loads(run(["customers", "show", customer["id"]], tmp_path, env).stdout)["apiKeyPrefix"]
        != shown["apiKeyPrefix"]
    )

    server = Served(tmp_path, env)
    try:
        assert httpx.get(f"{server.url}/api/usage", headers={"x-api-key": new_key}).status_code == 200
        assert httpx.get(f"{server.url}/api/usage", headers={"x-api-key": customer["apiKey"]}).status_code == 401
        deactivated = run(["customers", "deactivate", customer["id"]], tmp_path, env)
        assert deactivated.returncode == 0, deactivated.stderr
        assert json.loads(deactivated.stdout)["active"] is False
    finally:
        server.stop()

    missing = run(["customers", "show", "cust_nobody"], tmp_path, env)
    assert missing.returncode == 1 and "no customer 'cust_nobody'" in missing.stderr


def test_a_command_run_from_the_wrong_folder_says_so_and_creates_nothing(tmp_path: Path) -> None:
    listed = run(["customers", "list"], tmp_path, clean_env(HERMES_ENCRYPTION_KEYS=new_keyring()))
    assert listed.returncode == 1
    expected = f"no Hermes database at {(tmp_path / 'var' / 'hermes.db').resolve()}"
    assert expected in listed.stderr
    assert "run from the project folder or set HERMES_DATABASE_URL" in listed.stderr
    assert not (tmp_path / "var").exists()


def test_a_busy_port_is_named_before_anything_claims_to_serve(tmp_path: Path) -> None:
    env = clean_env(HERMES_ENCRYPTION_KEYS=new_keyring())
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        served = run(["serve", "--port", str(port)], tmp_path, env)
    assert served.returncode == 1
    assert f"port {port} is in use" in served.stderr
    assert "Hermes on" not in served.stderr
    assert "Traceback" not in served.stderr


def test_the_public_url_follows_the_port_served_and_a_mismatch_is_warned(tmp_path: Path) -> None:
    env = clean_env(HERMES_ENCRYPTION_KEYS=new_keyring())
    assert run(["db", "upgrade"], tmp_path, env).returncode == 0
    server = Served(tmp_path, env)
    try:
        metadata = httpx.get(f"{server.url}/.well-known/oauth-authorization-server").json()
    finally:
        server.stop()
    assert metadata["issuer"] == server.url

    mismatched = Served(tmp_path, {**env, "HERMES_PUBLIC_URL": "http://127.0.0.1:8000"})
    mismatched.stop()
    output = mismatched.process.stdout.read() if mismatched.process.stdout else ""
    assert f"WARNING: HERMES_PUBLIC_URL is http://127.0.0.1:8000, but Hermes serves on 127.0.0.1:{mismatched.port}" in (
        output
    )


def _scrape(url: str, token: str) -> str:
    reply = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.text


def _healthz_count(text: str) -> float:
    pattern = r'hermes_http_request_duration_seconds_count\{route="/healthz",status="200"\} (\S+)'
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def _metrics_directories() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("hermes-metrics-*"))


def test_metrics_add_up_across_two_workers(tmp_path: Path, mariadb_url: str, redis_url: str) -> None:
    token = "metrics-" + new_keyring()[3:20]
    env = clean_env(
        HERMES_ENCRYPTION_KEYS=new_keyring(),
        HERMES_DATABASE_URL=mariadb_url,
        HERMES_REDIS_URL=redis_url,
        HERMES_METRICS_TOKEN=token,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    before = _metrics_directories()
    process = subprocess.Popen(
        [HERMES, "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "hermes serve --workers 2 did not start"
            time.sleep(0.2)
        created = _metrics_directories() - before
        assert len(created) == 1, created
        directory = created.pop()
        # Wait until both workers have started (each leaves its own files once it counts something).
        requests = 1
        while len({p.stem.rsplit("_", 1)[1] for p in directory.glob("histogram_*.db")}) < 2:
            assert time.monotonic() < deadline + 30, "the second worker never served a request"
            httpx.get(f"{url}/healthz", timeout=5)  # a new connection each time: the kernel spreads them
            requests += 1
        for _ in range(20):
            httpx.get(f"{url}/healthz", timeout=5)
            requests += 1
        time.sleep(0.3)  # a sample is taken just after its response is sent
        # Whichever worker answers the scrape, it reports the requests of both.
        counts = {_healthz_count(_scrape(url, token)) for _ in range(6)}
        assert counts == {float(requests)}
        assert httpx.get(f"{url}/metrics", timeout=5).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert not directory.exists()  # made for the run, removed after it


def test_make_bench_entry_point_imports_from_a_clean_checkout() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "bench.run_all", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "--only" in shown.stdout


def test_json_logs_from_a_served_process_carry_the_request_id(tmp_path: Path) -> None:
    env = clean_env(HERMES_ENCRYPTION_KEYS=new_keyring(), HERMES_LOG_FORMAT="json")
    assert run(["db", "upgrade"], tmp_path, env).returncode == 0
    customer = json.loads(
        run(["customers", "create", "--email", "j@example.com", "--plan", "pro"], tmp_path, env).stdout
    )
    token = "MTA.json.logs." + "J" * 20
    server = Served(tmp_path, {**env, "HERMES_PUBLIC_URL": "http://127.0.0.1:1"})
    try:
        reply = httpx.post(
            f"{server.url}/api/connect/discord?verify=false",
            json={"botToken": token},
            headers={"x-api-key": customer["apiKey"], "X-Request-Id": "json-logs-1"},
        )
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-request-id"] == "json-logs-1"
    finally:
        server.stop()
    output = server.process.stdout.read() if server.process.stdout else ""
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # every line is one JSON object
    assert any(e["level"] == "WARNING" and "HERMES_PUBLIC_URL" in e["message"] for e in lines)
    assert any(e["message"].startswith("Hermes on http://") for e in lines)
    connected = [e for e in lines if "connected discord" in e["message"]]
    assert [(e["request_id"], e["customer_id"]) for e in connected] == [("json-logs-1", customer["id"])]
    assert token not in output and customer["apiKey"] not in output
