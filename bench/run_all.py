"""`make bench`: every benchmark, then bench/RESULTS.md with each figure beside its same-run baseline.

Run: `.venv/bin/python -m bench.run_all [--duration 10 --runs 3]` (about 10 minutes with the defaults).
"""

from __future__ import annotations

import argparse
import importlib
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import PROFILE_SECONDS, machine

# Each module's run(duration, runs, connections) returns its rows.
BENCHMARKS = [
    "bench.connections",
    "bench.tool_call",
    "bench.platform_call",
    "bench.send_guard",
    "bench.webhook",
    "bench.inbound_mix",
    "bench.conversations",
    "bench.load",
    "bench.health",
    "bench.renewals",
]
RESULTS = Path(__file__).with_name("RESULTS.md")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="module names, e.g. bench.connections")
    parser.add_argument("--load-duration", type=int, default=60, help="seconds of mixed load (memory goal: 60)")
    parser.add_argument(
        "--profile-seconds",
        type=int,
        default=PROFILE_SECONDS,
        help="each figure's separate py-spy run, after the measured ones (0: none)",
    )
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    started = time.monotonic()
    for name in args.only or BENCHMARKS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            notes.append(f"- {name}: not run ({exc})")
            continue
        duration = args.load_duration if name == "bench.load" else args.duration
        try:
            rows.extend(module.run(duration=duration, runs=args.runs, profile_seconds=args.profile_seconds))
        except Exception as exc:  # one broken figure must not cost the others theirs
            traceback.print_exc()
            notes.append(f"- {name}: failed ({type(exc).__name__}: {exc})")
    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; "
        f"{args.runs} run(s) of {args.duration} s each, median; baselines measured in the same run. "
        f"Total {time.monotonic() - started:.0f} s. Regenerate with `make bench`.",
        "",
        "CPU µs/req: user + system CPU of the server process during the measured runs (for the webhook, until",
        "what the bursts queued was routed; for ack to inbox and ack to conversation, all it did in that run),",
        "divided by the requests completed. wrk's CPU is not counted, nor the fake platform's.",
        "",
        "| figure | baseline | baseline req/s | Hermes req/s | ratio | baseline p99 ms | Hermes p50 ms "
        "| Hermes p99 ms | baseline CPU µs/req | Hermes CPU µs/req | goal |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [table_row(row) for row in rows]
    profiled = [row for row in rows if row.get("profile")]
    if profiled:
        lines += [
            "",
            "## Where Hermes spends its CPU",
            "",
            f"py-spy, {args.profile_seconds} s per figure in a run of its own after the measured ones (sampling",
            "slows the server); shares of the samples in which the server held the GIL, that is ran Python code",
            "or C code called from it (a socket send, a hash), not waiting. *Own time*: the function running when",
            "sampled. *Innermost Hermes function*: the deepest Hermes frame on the stack, counting the library",
            "calls it made. `make bench` keeps every stack in bench/out/profile-*.txt (collapsed stacks,",
            "for speedscope or flamegraph.pl).",
            "",
        ]
        for row in profiled:
            lines += profile_lines(row)
    lines += ["", *notes] if notes else []
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"\nwrote {RESULTS}")


def table_row(row: dict[str, object]) -> str:
    """A figure's line in the RESULTS.md table."""
    cells = [row["figure"], row["baseline"]]
    cells += [row.get(key, "-") for key in ("baseline_rps", "hermes_rps", "ratio", "baseline_p99_ms")]
    cells += [row.get(key, "-") for key in ("p50_ms", "p99_ms", "baseline_cpu_us", "hermes_cpu_us")]
    return "| " + " | ".join(str(cell) for cell in [*cells, row["goal"]]) + " |"


def profile_lines(row: dict[str, object]) -> list[str]:
    """A profiled figure's entry under "Where Hermes spends its CPU"."""
    return [f"- {row.get('profile_figure', row['figure'])}", *(f"  - {line}" for line in row["profile"])]  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
