"""One outbound platform call in isolation: `whatsapp_send_message`'s send through `PlatformHttp` against the
fake Graph API, beside a bare `aiohttp.ClientSession.post` (the leanest library client measured here),
measured in the same run.

Both sides run in this process (uvloop, as the server does) with the same number of calls in flight; the
figure is this process's CPU per call (the fake Graph API runs in its own process and is not counted). The
rounds alternate baseline and Hermes, so a noisy neighbour slows both alike. A separate py-spy run of the
Hermes side gives its top functions.

Goal: the Hermes call costs at most 10 % more CPU than the bare post (ratio = bare µs / Hermes µs >= 0.9x).
Run: `.venv/bin/python -m bench.platform_call [--duration 5 --runs 3 --connections 16]`.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import uvloop

from bench.harness import OUT, PROFILE_SECONDS, ROOT, ensure_py_spy, machine, parse_raw_profile, serve
from hermes.adapters.platforms import whatsapp
from hermes.adapters.platforms.base import StructTool
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.http import make_client
from hermes.domain.platform import Platform

SIDES = ("bare", "hermes")
PHONE_NUMBER_ID = "106540352242922"
CREDENTIALS: dict[str, str | int] = {
    "phoneNumberId": PHONE_NUMBER_ID,
    "accessToken": "EAAG-bench-token",
    "businessAccountId": "1",
}
ARGUMENTS = {"to": "+15550001111", "message": "hello from the bench"}
# What the WhatsApp plug-in sends for ARGUMENTS, posted as the bare call's body.
BARE_BODY = (
    b'{"messaging_product":"whatsapp","recipient_type":"individual","to":"+15550001111","type":"text",'
    b'"text":{"body":"hello from the bench","preview_url":true}}'
)

Call = Callable[[], Awaitable[Any]]


class _Session:
    """aiohttp's session closed the way the httpx clients are (`aclose`)."""

    def __init__(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512), cookie_jar=aiohttp.DummyCookieJar()
        )

    async def aclose(self) -> None:
        await self.session.close()


def bare_side(graph: str) -> tuple[_Session, Call]:
    """What a bare gateway would write: one aiohttp session, one post per call, read whole."""
    client = _Session()
    url = f"{graph}/v23.0/{PHONE_NUMBER_ID}/messages"
    headers = {"Authorization": f"Bearer {CREDENTIALS['accessToken']}", "Content-Type": "application/json"}

    async def call() -> Any:
        async with client.session.post(url, data=BARE_BODY, headers=headers) as response:
            return await response.read()

    return client, call


def hermes_side(graph: str) -> tuple[httpx.AsyncClient, Call]:
    """The WhatsApp plug-in's `whatsapp_send_message` on Hermes's shared client: the whole send path."""
    config = PlatformConfig(api_bases=dict.fromkeys(Platform, graph + "/v23.0"), allow_private_networks=True)
    client = make_client(config)
    plugin = whatsapp.plugin(client, config)
    tool = next(t for t in plugin.tools if t.spec.name == "whatsapp_send_message")
    assert isinstance(tool, StructTool)
    args = tool.parse(ARGUMENTS)

    async def call() -> Any:
        return await tool.runner(args, CREDENTIALS)

    return client, call


def build(side: str, graph: str) -> tuple[httpx.AsyncClient | _Session, Call]:
    return bare_side(graph) if side == "bare" else hermes_side(graph)


async def drive(call: Call, seconds: float, in_flight: int) -> int:
    """Calls with `in_flight` of them running at once, for `seconds`; how many completed."""
    done = 0
    stop = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop:
            await call()
            done += 1

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return done


async def measure(graph: str, seconds: float, runs: int, in_flight: int) -> dict[str, tuple[int, float]]:
    """Per side: calls completed and CPU seconds spent, over `runs` alternating rounds after a warm-up."""
    sides = {side: build(side, graph) for side in SIDES}
    totals = dict.fromkeys(SIDES, (0, 0.0))
    try:
        for _, call in sides.values():
            await drive(call, 0.5, in_flight)
        for _ in range(runs):
            for side, (_, call) in sides.items():
                cpu = time.process_time()
                calls = await drive(call, seconds, in_flight)
                calls_before, cpu_before = totals[side]
                totals[side] = (calls_before + calls, cpu_before + time.process_time() - cpu)
    finally:
        for client, _ in sides.values():
            await client.aclose()
    return totals


def profile(graph: str, seconds: int, in_flight: int) -> list[str]:
    """py-spy over a separate process running only the Hermes side (sampling slows what it samples).

    The process imports and warms up first, then says so; only then is it sampled.
    """
    spy = ensure_py_spy()
    if spy is None or seconds <= 0:
        return []
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / "profile-platform-call.txt"
    out.unlink(missing_ok=True)
    loop = [sys.executable, "-m", "bench.platform_call", "--loop", graph, str(seconds + 2), str(in_flight)]
    with subprocess.Popen(loop, cwd=ROOT, stdout=subprocess.PIPE) as calls:
        assert calls.stdout is not None
        calls.stdout.readline()  # warmed up
        options = ["--function", "--gil", "--rate", "200", "--format", "raw", "--output", str(out)]
        record = ["record", "--pid", str(calls.pid), "--duration", str(seconds), *options]
        subprocess.run([spy, *record], capture_output=True, check=False)
        calls.wait()
    if not out.exists():
        return ["no samples (py-spy could not read the process)"]
    summary = parse_raw_profile(out.read_text())
    summary.path = str(out.relative_to(ROOT))
    return summary.lines()


def run(
    duration: int = 5, runs: int = 3, connections: int = 16, *, profile_seconds: int = PROFILE_SECONDS
) -> list[dict[str, object]]:
    with serve(["bench.fake_graph:app"], {}, health="/") as graph:
        totals = uvloop.run(measure(graph, duration, runs, connections))
        profiled = profile(graph, profile_seconds, connections)
    us = {side: cpu / calls * 1e6 if calls else float("nan") for side, (calls, cpu) in totals.items()}
    rate = {side: calls / (duration * runs) for side, (calls, _) in totals.items()}
    ratio = us["bare"] / us["hermes"]
    title = f"one WhatsApp send, {connections} calls in flight, client CPU per call"
    print(f"\n{title}  ({machine()})")
    print(f"  {'':46s} {'calls/s':>9s} {'CPU us/call':>12s}")
    print(f"  {'bare aiohttp.ClientSession.post':46s} {rate['bare']:9.0f} {us['bare']:12.0f}")
    print(f"  {'Hermes PlatformHttp (whatsapp_send_message)':46s} {rate['hermes']:9.0f} {us['hermes']:12.0f}")
    print(f"  ratio (bare CPU / Hermes CPU): {ratio:.2f}x   (goal >= 0.9x)")
    if profiled:
        print("  profile of the Hermes side (separate run):")
        for line in profiled:
            print(f"    {line}")
    row: dict[str, object] = {
        "figure": title,
        "baseline": "bare aiohttp.ClientSession.post",
        "baseline_rps": round(rate["bare"]),
        "hermes_rps": round(rate["hermes"]),
        "ratio": round(ratio, 2),
        "baseline_cpu_us": f"{us['bare']:.0f}",
        "hermes_cpu_us": f"{us['hermes']:.0f}",
        "goal": ">= 0.9x (bare CPU / Hermes CPU)",
    }
    return [row | ({"profile": profiled} if profiled else {})]


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--loop":  # the process py-spy samples
        graph, seconds, in_flight = sys.argv[2], float(sys.argv[3]), int(sys.argv[4])

        async def loop() -> None:
            client, call = hermes_side(graph)
            try:
                await drive(call, 0.5, in_flight)
                print("warmed up", flush=True)
                await drive(call, seconds, in_flight)
            finally:
                await client.aclose()

        uvloop.run(loop())
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16, help="calls in flight")
    parser.add_argument("--profile-seconds", type=int, default=PROFILE_SECONDS)
    args = parser.parse_args()
    run(args.duration, args.runs, args.connections, profile_seconds=args.profile_seconds)


if __name__ == "__main__":
    main()
