"""Tool calls through /mcp: `whatsapp_send_message` in customer mode against a fake Graph API on loopback,
beside the bare `mcp` SDK echo tool measured in the same run, on both protocol generations.

Goals (PERFORMANCE.md): >= 1.0x on 2025-11-25, >= 0.7x on 2026-07-28.
Run: `.venv/bin/python -m bench.tool_call [--duration 10 --runs 3]`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import httpx

from bench.connections import CUSTOMERS, bench_database, create_customer, drop_database, hermes_env
from bench.harness import (
    PROFILE_SECONDS,
    Profile,
    WrkRequest,
    WrkResult,
    command_line,
    median_of,
    profile,
    report,
    serve,
    wrk,
    wrk_requests,
)

PROTOCOLS = ["2025-11-25", "2026-07-28"]


def call_body(protocol: str, name: str, arguments: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": protocol,
    }
    if protocol >= "2026":
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": protocol,
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers |= {"Mcp-Method": "tools/call", "Mcp-Name": name}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    return json.dumps(body).encode(), headers


def check(url: str, body: bytes, headers: dict[str, str]) -> None:
    reply = httpx.post(url, content=body, headers=headers)
    result = reply.json().get("result", {})
    if reply.status_code != 200 or result.get("isError"):
        raise SystemExit(f"tool call failed before the benchmark: {reply.status_code} {reply.text[:500]}")


def run(
    duration: int = 10, runs: int = 3, connections: int = 50, *, profile_seconds: int = PROFILE_SECONDS
) -> list[dict[str, object]]:
    def measure(url: str, body: bytes, headers: dict[str, str]) -> Callable[[], WrkResult]:
        return lambda: wrk(url, method="POST", body=body, headers=headers, connections=connections, duration=duration)

    baselines: dict[str, WrkResult] = {}
    with serve(["--factory", "bench.echo_server:app"], {}) as echo:
        for protocol in PROTOCOLS:
            body, headers = call_body(protocol, "echo", {"text": "hello"})
            check(echo + "/mcp/", body, headers)
            baselines[protocol] = median_of(runs, measure(echo + "/mcp/", body, headers))

    results: dict[str, WrkResult] = {}
    profiles: dict[str, Profile | None] = {}
    database_url = bench_database()
    try:
        with serve(["bench.fake_graph:app"], {}, health="/") as graph:
            env = hermes_env(database_url) | {"HERMES_WHATSAPP_API_BASE": graph + "/v23.0"}
            with serve(["--factory", "hermes.entrypoints.http.app:make_app"], env) as url:
                keys = []
                for n in range(CUSTOMERS):
                    key = create_customer(url, f"bench{n}@example.com")
                    connect = httpx.post(
                        url + "/api/connect/whatsapp",
                        json={
                            "phoneNumberId": str(secrets.randbelow(10**15)),
                            "accessToken": f"EAAG-bench-{n}",
                            "businessAccountId": "1",
                        },
                        headers={"x-api-key": key},
                    )
                    connect.raise_for_status()
                    keys.append(key)
                for protocol in PROTOCOLS:
                    body, headers = call_body(
                        protocol, "whatsapp_send_message", {"to": "+15550001111", "message": "hello from the bench"}
                    )
                    # Several customers in turn, so no plan limit is reached (a 429 is no figure).
                    requests: list[WrkRequest] = [
                        ("POST", None, {**headers, "Authorization": f"Bearer {key}"}, body) for key in keys
                    ]
                    check(url + "/mcp", body, dict(requests[0][2]))
                    results[protocol] = median_of(
                        runs,
                        lambda r=requests: wrk_requests(url + "/mcp", r, connections=connections, duration=duration),
                    )
                    profiles[protocol] = profile(
                        f"tool-call-{protocol}",
                        url + "/mcp",
                        requests,
                        seconds=profile_seconds,
                        connections=connections,
                    )
    finally:
        drop_database(database_url)

    goals = {"2025-11-25": ">= 1.0x", "2026-07-28": ">= 0.7x"}
    return [
        report(
            f"/mcp whatsapp_send_message, protocol {protocol}, {connections} connections",
            "bare mcp SDK stateless echo tool",
            baselines[protocol],
            "Hermes (customer mode, fake Graph API)",
            results[protocol],
            goals[protocol],
            profiles[protocol],
        )
        for protocol in PROTOCOLS
    ]


if __name__ == "__main__":
    command_line(run)
