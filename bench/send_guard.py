"""What the owner's send policy costs on the send path: `whatsapp_send_message` over /mcp from customers with a
policy (recipient patterns, an hourly cap per recipient, approval for new recipients, the recipient known)
beside the same send from customers without one, on one Hermes in the same run.

Goal: the checks cost under 10 % (ratio >= 0.9x). Idempotency keys are not in this figure: wrk repeats one body,
and a repeated key is a duplicate, not a send.
Run: `.venv/bin/python -m bench.send_guard [--duration 10 --runs 3]`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx

from bench.connections import CUSTOMERS, bench_database, create_customer, drop_database, hermes_env
from bench.harness import (
    PROFILE_SECONDS,
    WrkRequest,
    WrkResult,
    command_line,
    median_of,
    profile,
    report,
    serve,
    wrk_requests,
)
from bench.tool_call import call_body, check

PROTOCOL = "2025-11-25"
RECIPIENT = "+15550001111"
POLICY = {
    "approval": "new_recipients",
    "recipients": {"whatsapp": ["+1555*", "+3161*"]},
    "maxSendsPerRecipientPerHour": 100_000,
}


def _customer(url: str, n: int) -> str:
    key = create_customer(url, f"guard{n}@example.com")
    credentials = {
        "phoneNumberId": str(secrets.randbelow(10**15)),
        "accessToken": f"EAAG-g{n}",
        "businessAccountId": "1",
    }
    httpx.post(url + "/api/connect/whatsapp", json=credentials, headers={"x-api-key": key}).raise_for_status()
    return key


def run(
    duration: int = 10, runs: int = 3, connections: int = 50, *, profile_seconds: int = PROFILE_SECONDS
) -> list[dict[str, object]]:
    body, headers = call_body(PROTOCOL, "whatsapp_send_message", {"to": RECIPIENT, "message": "hello from the bench"})
    database_url = bench_database()
    try:
        with serve(["bench.fake_graph:app"], {}, health="/") as graph:
            env = hermes_env(database_url) | {"HERMES_WHATSAPP_API_BASE": graph + "/v23.0"}
            with serve(["--factory", "hermes.entrypoints.http.app:make_app"], env) as url:
                plain = [_customer(url, n) for n in range(CUSTOMERS // 2)]
                guarded = [_customer(url, n) for n in range(CUSTOMERS // 2, CUSTOMERS)]
                for key in guarded:
                    # One send first, so the recipient is known and the figure measures sends, not held sends.
                    check(url + "/mcp", body, {**headers, "Authorization": f"Bearer {key}"})
                    reply = httpx.put(url + "/api/policy", json=POLICY, headers={"x-api-key": key})
                    reply.raise_for_status()

                def calls(keys: list[str]) -> list[WrkRequest]:
                    requests: list[WrkRequest] = [
                        ("POST", None, {**headers, "Authorization": f"Bearer {k}"}, body) for k in keys
                    ]
                    check(url + "/mcp", body, dict(requests[0][2]))
                    return requests

                def measure(requests: list[WrkRequest]) -> Callable[[], WrkResult]:
                    return lambda: wrk_requests(url + "/mcp", requests, connections=connections, duration=duration)

                plain_calls, guarded_calls = calls(plain), calls(guarded)
                without, with_policy = measure(plain_calls), measure(guarded_calls)
                # Interleaved, so that drift in the machine's load falls on both sides alike.
                pairs = [(without(), with_policy()) for _ in range(runs)]
                profiled = profile(
                    "send-guard", url + "/mcp", guarded_calls, seconds=profile_seconds, connections=connections
                )
    finally:
        drop_database(database_url)
    baseline = median_of(len(pairs), iter(p[0] for p in pairs).__next__)
    guarded_result = median_of(len(pairs), iter(p[1] for p in pairs).__next__)
    return [
        report(
            f"/mcp whatsapp_send_message with a send policy, protocol {PROTOCOL}, {connections} connections",
            "the same send without a policy",
            baseline,
            "with patterns, hourly cap, new-recipient approval",
            guarded_result,
            ">= 0.9x",
            profiled,
        )
    ]


if __name__ == "__main__":
    command_line(run)
