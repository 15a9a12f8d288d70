"""What `make bench` reads from wrk, /proc and py-spy, checked on their real output formats."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.harness import WrkResult, cpu_seconds, median, parse_raw_profile, parse_wrk

WRK_OUTPUT = """\
Running 2s test @ http://127.0.0.1:41213/webhook/whatsapp
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.02ms    3.11ms  40.05ms   85.51%
    Req/Sec     3.60k   301.46     4.06k    75.00%
  Latency Distribution
     50%    6.50ms
     75%    7.84ms
     90%    9.99ms
     99%    1.02s
  14320 requests in 2.00s, 2.05MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   7158.79
Transfer/sec:      1.02MB
"""


def test_wrk_output_gives_rate_latencies_failures_and_completed_requests() -> None:
    result = parse_wrk(WRK_OUTPUT)

    assert result.requests_per_s == 7158.79
    assert result.p50_ms == 6.5
    assert result.p99_ms == 1020.0
    assert (result.non_2xx, result.errors, result.requests) == (5, 4, 14320)


def test_cpu_per_request_is_the_servers_cpu_over_all_runs_divided_by_their_requests() -> None:
    runs = [
        WrkResult(1000.0, 5.0, 50.0, 0, 0, requests=10_000, cpu_s=2.0),
        WrkResult(1200.0, 4.0, 40.0, 0, 0, requests=12_000, cpu_s=2.0),
        WrkResult(900.0, 6.0, 60.0, 0, 0, requests=9_000, cpu_s=2.2),
    ]

    summary = median(runs)

    assert summary.requests_per_s == 1000.0
    assert summary.p99_ms == 50.0  # latencies come from the median run
    assert round(summary.cpu_us) == 200  # 6.2 s over 31,000 requests


def test_cpu_seconds_counts_the_processes_a_server_started() -> None:
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ntime.sleep(30)"
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])"]
    )
    try:
        deadline = time.monotonic() + 20
        while cpu_seconds(parent.pid) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        # The parent itself only waits: the burnt CPU is its child's.
        assert cpu_seconds(parent.pid) >= 0.3
    finally:
        for child in subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split():
            subprocess.run(["kill", child], check=False)
        parent.wait(timeout=10)


PY_SPY_RAW = """\
process 1:"python -m uvicorn";Runner.run (asyncio/runners.py:86);Litestar.__call__ (litestar/app.py:599);\
McpEndpoint.__call__ (hermes/entrypoints/mcp_server.py:40);PlatformHttp._once (hermes/adapters/platforms/http.py:88);\
StreamWriter._writelines (aiohttp/http_writer.py:120) 30
process 1:"python -m uvicorn";Runner.run (asyncio/runners.py:86);Litestar.__call__ (litestar/app.py:599);\
McpEndpoint.__call__ (hermes/entrypoints/mcp_server.py:40) 20
process 1:"python -m uvicorn";Runner.run (asyncio/runners.py:86);\
RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:500) 40
process 1:"python -m uvicorn";Runner.run (asyncio/runners.py:86) 10
"""


def test_profile_ranks_own_time_and_the_innermost_hermes_function() -> None:
    summary = parse_raw_profile(PY_SPY_RAW, top=3)

    assert summary.samples == 100
    assert summary.own == [
        ("uvicorn.protocols.http.httptools_impl.RequestResponseCycle.send", 0.4),
        ("aiohttp.http_writer.StreamWriter._writelines", 0.3),
        ("hermes.entrypoints.mcp_server.McpEndpoint.__call__", 0.2),
    ]
    assert summary.hermes == [
        ("(no Hermes frame)", 0.5),
        ("hermes.adapters.platforms.http.PlatformHttp._once", 0.3),
        ("hermes.entrypoints.mcp_server.McpEndpoint.__call__", 0.2),
    ]
    own_line = summary.lines()[0]
    assert own_line.startswith("own time: uvicorn.protocols.http.httptools_impl.RequestResponseCycle.send 40%;")
