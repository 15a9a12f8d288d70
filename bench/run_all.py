"""`make bench`: every benchmark, then bench/RESULTS.md with each figure beside its same-run baseline.

Run: `.venv/bin/python -m bench.run_all [--duration 10 --runs 3]` (about 10 minutes with the defaults).
"""

from __future__ import annotations

import argparse
import importlib
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import machine

# Each module's run(duration, runs, connections) returns its rows.
BENCHMARKS = ["bench.connections", "bench.tool_call", "bench.webhook", "bench.conversations", "bench.load"]
RESULTS = Path(__file__).with_name("RESULTS.md")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="module names, e.g. bench.connections")
    parser.add_argument("--load-duration", type=int, default=60, help="seconds of mixed load (memory goal: 60)")
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
        rows.extend(module.run(duration=duration, runs=args.runs))
    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; "
        f"{args.runs} run(s) of {args.duration} s each, median; baselines measured in the same run. "
        f"Total {time.monotonic() - started:.0f} s. Regenerate with `make bench`.",
        "",
        "| figure | baseline | baseline | Hermes | ratio | Hermes p50 ms | Hermes p99 ms | goal |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['figure']} | {row['baseline']} | {row.get('baseline_rps', '-')} | {row.get('hermes_rps', '-')} "
            f"| {row.get('ratio', '-')} | {row.get('p50_ms', '-')} | {row.get('p99_ms', '-')} | {row['goal']} |"
        )
    lines += ["", *notes] if notes else []
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
