"""A mixed workload against Hermes under uvicorn with real MariaDB and Redis and a fake Graph API:
tool calls over /mcp, signed webhooks and connection checks for several customers at once.

Reports throughput, p50/p99 and errors per route (errors must be zero) and resident memory after
warm-up and after the run (goal: < 5 % growth), and the server's CPU per request over the whole mix.
Run: `.venv/bin/python -m bench.load [--duration 60]`.
"""

from __future__ import annotations

import argparse
import secrets
import threading

import httpx

from bench.connections import bench_database, drop_database, hermes_env
from bench.harness import (
    PIDS,
    PROFILE_SECONDS,
    Profile,
    WrkRequest,
    WrkResult,
    cpu_seconds,
    cpu_text,
    machine,
    profile,
    profile_row,
    rss_mib,
    serve,
    wrk_requests,
)
from bench.tool_call import call_body
from bench.webhook import APP_SECRET, meta_batch, sign

# Enough customers that none reaches its plan's 30,000 requests a minute over the warm-up and the run
# (a 429 is no figure): the mix reached 5,000 rate-limited requests/s on 2 cores.
CUSTOMERS = 16
PROFILED: list[Profile | None] = []


def setup(url: str) -> list[dict[str, str]]:
    customers = []
    for n in range(CUSTOMERS):
        created = httpx.post(
            url + "/admin/customers",
            json={"email": f"load{n}@example.com", "plan": "enterprise"},
            headers={"Authorization": "Bearer bench-admin"},
        ).json()
        phone = str(secrets.randbelow(10**15))
        httpx.post(
            url + "/api/connect/whatsapp",
            json={"phoneNumberId": phone, "accessToken": f"EAAG-load-{n}", "businessAccountId": "1"},
            headers={"x-api-key": created["apiKey"]},
        ).raise_for_status()
        customers.append({"key": created["apiKey"], "phone": phone})
    return customers


def workload(customers: list[dict[str, str]], tag: str) -> dict[str, list[WrkRequest]]:
    tools: list[WrkRequest] = []
    for customer in customers:
        body, headers = call_body("2025-11-25", "whatsapp_send_message", {"to": "+15550001111", "message": "load"})
        tools.append(("POST", "/mcp", {**headers, "Authorization": f"Bearer {customer['key']}"}, body))
    webhooks: list[WrkRequest] = []
    for n in range(400):
        customer = customers[n % len(customers)]
        body = meta_batch(f"wamid.load.{tag}.{n}", customer["phone"])
        webhooks.append(
            ("POST", "/webhook/whatsapp", {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}, body)
        )
    checks: list[WrkRequest] = [("GET", "/api/connections", {"x-api-key": c["key"]}, None) for c in customers]
    return {"/mcp tools/call": tools, "POST /webhook/whatsapp": webhooks, "GET /api/connections": checks}


def concurrently(
    url: str, mix: dict[str, list[WrkRequest]], duration: int, *, sampled: str | None = None
) -> dict[str, WrkResult]:
    """One wrk per route, all at once, so each route's latency is measured under the whole mix.

    With `sampled`, that route's wrk runs under py-spy (bench.harness.profile), which then samples the
    whole mix: a separate run, never the measured one.
    """
    results: dict[str, WrkResult] = {}
    connections = {"/mcp tools/call": 16, "POST /webhook/whatsapp": 16, "GET /api/connections": 16}
    PROFILED.clear()

    def one(route: str) -> None:
        if route == sampled:
            PROFILED.append(profile("mixed-load", url, mix[route], seconds=duration, connections=connections[route]))
            return
        results[route] = wrk_requests(url, mix[route], connections=connections[route], duration=duration, threads=1)

    threads = [threading.Thread(target=one, args=(route,)) for route in mix]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def run(
    duration: int = 60, runs: int = 1, connections: int = 48, *, profile_seconds: int = PROFILE_SECONDS
) -> list[dict[str, object]]:
    del runs, connections  # one long mixed run; connections are split per route above
    rows: list[dict[str, object]] = []
    database_url = bench_database()
    try:
        with serve(["bench.fake_graph:app"], {}, health="/") as graph:
            env = hermes_env(database_url) | {
                "HERMES_WHATSAPP_API_BASE": graph + "/v23.0",
                "HERMES_WHATSAPP_APP_SECRET": APP_SECRET,
            }
            with serve(["--factory", "hermes.entrypoints.http.app:make_app"], env) as url:
                pid = PIDS[url]
                customers = setup(url)
                concurrently(url, workload(customers, "warm"), duration=max(5, duration // 6))
                before = rss_mib(pid)
                cpu_before = cpu_seconds(pid)
                results = concurrently(url, workload(customers, "main"), duration=duration)
                cpu = cpu_seconds(pid) - cpu_before
                after = rss_mib(pid)
                if profile_seconds > 0:
                    concurrently(url, workload(customers, "sampled"), profile_seconds, sampled="/mcp tools/call")
    finally:
        drop_database(database_url)
    growth = (after - before) / before * 100
    total = sum(r.requests_per_s for r in results.values())
    errors = sum(r.non_2xx + r.errors for r in results.values())
    # One process serves every route, so its CPU is per request of the whole mix.
    mix_cpu_us = cpu / sum(r.requests for r in results.values()) * 1e6 if results else float("nan")
    print(f"\nmixed load, {duration} s, {CUSTOMERS} customers  ({machine()})")
    print(f"  {'route':28s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'non-2xx':>8s} {'errors':>7s}")
    for route, r in results.items():
        print(f"  {route:28s} {r.requests_per_s:8.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.non_2xx:8d} {r.errors:7d}")
        rows.append(
            {
                "figure": f"mixed load: {route}",
                "baseline": "-",
                "hermes_rps": round(r.requests_per_s),
                "p50_ms": round(r.p50_ms, 2),
                "p99_ms": round(r.p99_ms, 2),
                "hermes_cpu_us": f"{cpu_text(mix_cpu_us)} (whole mix)",
                "goal": f"errors 0 (saw {r.non_2xx + r.errors})",
            }
        )
    print(f"  total {total:.0f} req/s, errors {errors}, Hermes CPU {mix_cpu_us:.0f} us per request of the mix")
    if PROFILED and PROFILED[0] is not None:
        rows[-1] |= profile_row(PROFILED[0]) | {"profile_figure": "mixed load, all three routes at once"}
    print(f"  resident memory: {before:.1f} MiB after warm-up, {after:.1f} MiB after {duration} s ({growth:+.1f} %)")
    rows.append(
        {
            "figure": f"resident memory after {duration} s of mixed load",
            "baseline": f"{before:.1f} MiB after warm-up",
            "hermes_rps": f"{after:.1f} MiB",
            "ratio": f"{growth:+.1f} %",
            "goal": "< 5 % growth",
        }
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--profile-seconds", type=int, default=PROFILE_SECONDS)
    args = parser.parse_args()
    run(args.duration, profile_seconds=args.profile_seconds)


if __name__ == "__main__":
    main()
