"""Shared benchmark machinery: start servers as real processes, drive them with wrk, compare in one run.

Absolute numbers move from machine to machine; each script prints its baseline and
Hermes measured back to back, and the ratio between them.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


# Base URL -> the server process, for readings such as resident memory.
PIDS: dict[str, int] = {}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "wrk"],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        check=True,
        capture_output=True,
    )
    return shutil.which("wrk") or "wrk"


@contextmanager
def serve(args: list[str], env: Mapping[str, str], health: str = "/healthz") -> Iterator[str]:
    """Run `python -m uvicorn ...args` (one worker, uvloop, httptools) and yield its base URL."""
    port = free_port()
    cmd = [
        PYTHON,
        "-m",
        "uvicorn",
        *args,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    PIDS[url] = proc.pid
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + health, timeout=1).status_code < 500:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            raise RuntimeError(f"server did not start: {' '.join(args)}\n{log.read().decode(errors='replace')}")
        time.sleep(0.1)
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if match is None:
        print(f"(unparsed wrk latency {text!r})", file=sys.stderr)
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def lua_table(headers: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()) + "}"


WrkRequest = tuple[str, str | None, Mapping[str, str], bytes | None]  # method, path (None: the URL's), headers, body


def wrk_requests(
    url: str, requests: list[WrkRequest], *, connections: int = 50, duration: int = 10, threads: int = 2
) -> WrkResult:
    """wrk cycling through `requests` (distinct keys, signed bodies: wrk's Lua cannot compute an HMAC)."""
    # Built in init(): only then has wrk set its Host header, which wrk.format copies into each request.
    lines = ["local requests = {}", "local i = 0", "init = function(args)"]
    for n, (method, path, headers, body) in enumerate(requests, start=1):
        lua_path = json.dumps(path) if path else "nil"
        lua_body = json.dumps(body.decode()) if body is not None else "nil"
        lines.append(
            f"  requests[{n}] = wrk.format({json.dumps(method)}, {lua_path}, {lua_table(headers)}, {lua_body})"
        )
    lines += ["end", "request = function()", f"  i = (i % {len(requests)}) + 1", "  return requests[i]", "end"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    try:
        out = subprocess.run(
            [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    return parse_wrk(out)


def wrk(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    connections: int = 50,
    duration: int = 10,
    threads: int = 2,
) -> WrkResult:
    return wrk_requests(
        url, [(method, None, headers or {}, body)], connections=connections, duration=duration, threads=threads
    )


def parse_wrk(out: str) -> WrkResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return WrkResult(rps, p50, p99, non_2xx, errors)


def median_of(runs: int, measure: object) -> WrkResult:
    results = [measure() for _ in range(runs)]  # type: ignore[operator]
    best = sorted(results, key=lambda r: r.requests_per_s)[len(results) // 2]
    return WrkResult(
        statistics.median(r.requests_per_s for r in results),
        best.p50_ms,
        best.p99_ms,
        sum(r.non_2xx for r in results),
        sum(r.errors for r in results),
    )


def command_line(run: Callable[[int, int, int], object]) -> None:
    """`python -m bench.<name> [--duration S --runs N --connections C]` for a benchmark's run()."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    run(args.duration, args.runs, args.connections)


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def report(
    title: str, baseline_name: str, baseline: WrkResult, name: str, result: WrkResult, goal: str
) -> dict[str, object]:
    ratio = result.requests_per_s / baseline.requests_per_s if baseline.requests_per_s else 0.0
    print(f"\n{title}  ({machine()})")
    print(f"  {'':40s} {'req/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} {'non-2xx':>8s} {'errors':>7s}")
    for label, r in ((baseline_name, baseline), (name, result)):
        print(f"  {label:40s} {r.requests_per_s:10.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.non_2xx:8d} {r.errors:7d}")
    print(f"  ratio: {ratio:.2f}x   (goal {goal})")
    failed = result.non_2xx + result.errors + baseline.non_2xx + baseline.errors
    if failed:
        print(f"  NOT A VALID FIGURE: {failed} non-2xx answers or socket errors")
        goal = f"{goal}; INVALID: {failed} failed requests"
    return {
        "figure": title,
        "baseline": baseline_name,
        "baseline_rps": round(baseline.requests_per_s),
        "hermes_rps": round(result.requests_per_s),
        "ratio": round(ratio, 2),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "goal": goal,
    }
