"""Shared benchmark machinery: start servers as real processes, drive them with wrk, compare in one run.

Absolute numbers move from machine to machine; each script prints its baseline and
Hermes measured back to back, and the ratio between them. Each wrk run also reads the server's
CPU time from /proc (CPU microseconds per request, wrk's own CPU left out) and counts the lines the
server logged; `profile` then samples Hermes with py-spy in a separate run for its top functions.
"""

from __future__ import annotations

import asyncio
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
OUT = ROOT / "bench" / "out"  # profiles and server logs; not committed


# Base URL -> the server process, for readings such as resident memory and CPU.
PIDS: dict[str, int] = {}
# Base URL -> what the server wrote to stdout/stderr (kept in bench/out/ after the run).
LOGS: dict[str, Path] = {}


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
    OUT.mkdir(parents=True, exist_ok=True)
    log_path = OUT / f"server-{re.sub(r'[^A-Za-z0-9]+', '-', args[-1]).strip('-')}-{port}.log"
    log = log_path.open("w+b")
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    PIDS[url] = proc.pid
    LOGS[url] = log_path
    deadline = time.monotonic() + 90  # a loaded machine imports slowly
    while True:
        try:
            if httpx.get(url + health, timeout=1).status_code < 500:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()  # a server too slow to start must not outlive the benchmark
            proc.wait()
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


def _own_cpu_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # exited between the listing and the read
        return 0
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads; fields 14 and 15 of proc(5)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a server process, its threads and any processes it started (not wrk's)."""
    ticks = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        ticks += _own_cpu_ticks(current)
        pending.extend(_children(current))
    return ticks / os.sysconf("SC_CLK_TCK")


def _base(url: str) -> str:
    match = re.match(r"https?://[^/]+", url)
    return match.group(0) if match else url


def server_pid(url: str) -> int | None:
    """The process serving `url` (started by serve()), by its scheme://host:port."""
    return PIDS.get(_base(url))


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    requests: int = 0  # completed in the run
    cpu_s: float = float("nan")  # the server's CPU during the run (and any work it owed for it)
    log_lines: int = 0  # what the server logged during the run: per-request logging costs CPU

    @property
    def cpu_us(self) -> float:
        """Server CPU microseconds per completed request."""
        return self.cpu_s / self.requests * 1e6 if self.requests else float("nan")


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
    pid = server_pid(url)
    cpu_before = cpu_seconds(pid) if pid else float("nan")
    log = LOGS.get(_base(url))
    lines_before = _count_lines(log)
    try:
        out = subprocess.run(
            [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    result = parse_wrk(out)
    if pid:
        result.cpu_s = cpu_seconds(pid) - cpu_before
    result.log_lines = _count_lines(log) - lines_before
    return result


def _count_lines(path: Path | None) -> int:
    if path is None or not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


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
    done = int(m.group(1)) if (m := re.search(r"^\s*(\d+) requests in ", out, re.MULTILINE)) else 0
    return WrkResult(rps, p50, p99, non_2xx, errors, done)


def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile of sorted `values` (nearest rank); NaN when there are none."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


@dataclass
class OpenLoop:
    """When each request of an open-loop run left, when its answer came (NaN: none), and the answer's status
    (0: no answer, a socket error)."""

    sent_at: list[float]
    answered_at: list[float]
    statuses: list[int]

    @property
    def rate(self) -> float:
        """Requests per second achieved, from the first send to the last answer."""
        answered = [t for t in self.answered_at if t == t]
        span = max(answered) - min(self.sent_at) if answered else 0.0
        return len(self.sent_at) / span if span > 0 else float("nan")

    @property
    def offered(self) -> float:
        """Requests per second the sender managed to send (below the asked rate: the sender itself fell behind)."""
        span = max(self.sent_at) - min(self.sent_at) if self.sent_at else 0.0
        return (len(self.sent_at) - 1) / span if span > 0 else float("nan")

    def round_trip_ms(self) -> list[float]:
        """Each answered request's time from send to answer, sorted."""
        return sorted((a - s) * 1000 for s, a in zip(self.sent_at, self.answered_at, strict=True) if a == a)


async def open_loop(
    url: str,
    requests: Sequence[WrkRequest],
    rate: float,
    on_answer: Callable[[int, int, float], None] | None = None,
) -> OpenLoop:
    """Send request n at n / `rate` seconds, whatever became of the ones before (an open loop: a slow server
    shows as latency, not as a lower rate). `on_answer(n, status, time)` runs as each answer arrives."""
    count = len(requests)
    result = OpenLoop([float("nan")] * count, [float("nan")] * count, [0] * count)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:

        async def one(n: int, method: str, path: str | None, headers: Mapping[str, str], body: bytes | None) -> None:
            result.sent_at[n] = time.time()
            try:
                async with session.request(method, url + (path or ""), data=body, headers=headers) as reply:
                    await reply.read()
                    result.statuses[n] = reply.status
            except aiohttp.ClientError:
                pass
            result.answered_at[n] = time.time()
            if on_answer is not None:
                on_answer(n, result.statuses[n], result.answered_at[n])

        loop = asyncio.get_running_loop()
        tasks = []
        begin = loop.time()
        for n, request in enumerate(requests):
            delay = begin + n / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n, *request)))
        await asyncio.gather(*tasks)
    return result


def median_of(runs: int, measure: object) -> WrkResult:
    results = [measure() for _ in range(runs)]  # type: ignore[operator]
    return median(results)


def median(results: list[WrkResult]) -> WrkResult:
    """Median req/s; latencies from the median run; CPU per request over all runs."""
    best = sorted(results, key=lambda r: r.requests_per_s)[len(results) // 2]
    return WrkResult(
        statistics.median(r.requests_per_s for r in results),
        best.p50_ms,
        best.p99_ms,
        sum(r.non_2xx for r in results),
        sum(r.errors for r in results),
        sum(r.requests for r in results),
        sum(r.cpu_s for r in results),
        sum(r.log_lines for r in results),
    )


PROFILE_SECONDS = 5  # each figure's separate py-spy run; 0 skips it


def command_line(run: Callable[..., object]) -> None:
    """`python -m bench.<name> [--duration S --runs N --connections C --profile-seconds P]` for a run()."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--profile-seconds", type=int, default=PROFILE_SECONDS)
    args = parser.parse_args()
    run(args.duration, args.runs, args.connections, profile_seconds=args.profile_seconds)


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
    title: str,
    baseline_name: str,
    baseline: WrkResult,
    name: str,
    result: WrkResult,
    goal: str,
    profiled: Profile | None = None,
) -> dict[str, object]:
    ratio = result.requests_per_s / baseline.requests_per_s if baseline.requests_per_s else 0.0
    print(f"\n{title}  ({machine()})")
    print(f"  {'':40s} {'req/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} {'CPU us/req':>10s} {'non-2xx':>8s} {'errors':>7s}")
    for label, r in ((baseline_name, baseline), (name, result)):
        print(
            f"  {label:40s} {r.requests_per_s:10.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.cpu_us:10.0f} "
            f"{r.non_2xx:8d} {r.errors:7d}"
        )
    print(f"  ratio: {ratio:.2f}x   (goal {goal})")
    warn_logging(name, result)
    failed = result.non_2xx + result.errors + baseline.non_2xx + baseline.errors
    if failed:
        print(f"  NOT A VALID FIGURE: {failed} non-2xx answers or socket errors")
        goal = f"{goal}; INVALID: {failed} failed requests"
    row = {
        "figure": title,
        "baseline": baseline_name,
        "baseline_rps": round(baseline.requests_per_s),
        "hermes_rps": round(result.requests_per_s),
        "ratio": round(ratio, 2),
        "baseline_p99_ms": round(baseline.p99_ms, 2),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "baseline_cpu_us": cpu_text(baseline.cpu_us),
        "hermes_cpu_us": cpu_text(result.cpu_us),
        "goal": goal,
    }
    return row | profile_row(profiled)


def warn_logging(name: str, result: WrkResult) -> None:
    if result.log_lines:
        per = result.log_lines / result.requests if result.requests else float("nan")
        print(f"  {name} logged {result.log_lines} lines during the measured runs ({per:.2f} per request)")


def cpu_text(us: float) -> str:
    return "-" if us != us else f"{us:.0f}"  # NaN: the server's process was not known


def profile_row(profiled: Profile | None) -> dict[str, object]:
    """Print a figure's profile and return it as row fields for RESULTS.md."""
    if profiled is None:
        return {}
    print(f"  profile of Hermes ({profiled.samples} samples in a separate run; all stacks: {profiled.path}):")
    for line in profiled.lines():
        print(f"    {line}")
    return {"profile": profiled.lines()}


@dataclass
class Profile:
    """Where a server's CPU went in a sampled run: shares of the samples in which it held the GIL."""

    samples: int
    own: list[tuple[str, float]]  # the function running when sampled
    hermes: list[tuple[str, float]]  # the innermost Hermes function on the stack, with the library calls it made
    path: str = ""  # the whole sample, collapsed stacks

    def lines(self) -> list[str]:
        if not self.samples:
            return ["no samples (py-spy could not read the process)"]
        return [
            "own time: " + "; ".join(f"{name} {share:.0%}" for name, share in self.own),
            "innermost Hermes function: " + "; ".join(f"{name} {share:.0%}" for name, share in self.hermes),
        ]


_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _frame_name(frame: str) -> tuple[str, str]:
    """('function (file:line)' from py-spy) -> (a short display name, the file)."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    path = match.group("file")
    short = path.removesuffix(".py").replace("/", ".")
    short = short.removeprefix("src.")
    return f"{short}.{match.group('function')}", path


def parse_raw_profile(text: str, top: int = 5) -> Profile:
    """Summarise py-spy's raw (collapsed) output: one 'frame;frame;...;innermost count' line per stack."""
    own: dict[str, int] = {}
    hermes: dict[str, int] = {}
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1][0]] = own.get(frames[-1][0], 0) + count
        inner = next((name for name, path in reversed(frames) if _is_hermes(path)), "(no Hermes frame)")
        hermes[inner] = hermes.get(inner, 0) + count

    def ranked(counts: dict[str, int]) -> list[tuple[str, float]]:
        best = sorted(counts.items(), key=lambda item: item[1], reverse=True)[:top]
        return [(name, n / total) for name, n in best]

    return Profile(total, ranked(own), ranked(hermes)) if total else Profile(0, [], [])


def _is_hermes(path: str) -> bool:
    return path.startswith(("hermes/", "src/hermes/")) or "/src/hermes/" in path


def ensure_py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
    return found if Path(found).exists() else None


def profile(
    name: str,
    url: str,
    requests: list[WrkRequest],
    *,
    seconds: int,
    connections: int = 50,
    load: Callable[[], object] | None = None,
) -> Profile | None:
    """A separate short wrk run under py-spy (sampling slows the server, so never the measured run); `load`,
    when given, drives the server for about `seconds` instead of wrk.

    The whole sample is kept as bench/out/profile-<name>.txt, collapsed stacks that speedscope or
    flamegraph.pl open.
    """
    pid = server_pid(url)
    spy = ensure_py_spy()
    if not pid or not spy or seconds <= 0:
        return None
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"profile-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.txt"
    out.unlink(missing_ok=True)
    sampler = subprocess.Popen(
        [
            *(spy, "record", "--pid", str(pid), "--subprocesses", "--function", "--gil", "--rate", "200"),
            *("--format", "raw", "--output", str(out), "--duration", str(seconds + 1)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)  # py-spy attaches before the load starts
    if load is None:
        wrk_requests(url, requests, connections=connections, duration=seconds)
    else:
        load()
    try:
        _, err = sampler.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        sampler.kill()
        _, err = sampler.communicate()
    if not out.exists():
        print(f"(py-spy wrote no profile: {err.decode(errors='replace').strip()[-300:]})", file=sys.stderr)
        return Profile(0, [], [])
    summary = parse_raw_profile(out.read_text())
    summary.path = str(out.relative_to(ROOT))
    return summary
