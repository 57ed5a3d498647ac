"""`python -m bench [name ...]` (`make bench`): run the benchmarks, print a table.

Benchmarks report, they do not gate: a MISS still exits 0. A benchmark that crashes makes the
exit code 1 (after the others have run).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback

from bench.common import Options, Result

# name -> module; each module has NAME and run(options, log) -> Result.
BENCHMARKS = {
    "gateway-overhead": "bench.gateway_overhead",
    "login": "bench.login",
    "sale-propagation": "bench.sale_propagation",
    "event-throughput": "bench.event_throughput",
    "download": "bench.download",
    "profile-fanout": "bench.profile_fanout",
    "io-concurrency": "bench.io_concurrency",
    "scale": "bench.scale",
    "rights-check": "bench.rights_check",
}


def parse(argv: list[str] | None) -> tuple[list[str], Options, str | None]:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", metavar="name", help=f"one of: {', '.join(BENCHMARKS)} (default: all)")
    defaults = Options()
    parser.add_argument("--runs", type=int, default=defaults.runs, help="measured repetitions (medians are reported)")
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=defaults.warmup, help="seconds of warm-up")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default=defaults.loadgen,
        help="wrk when installed (auto), or the Python fallback",
    )
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin client and servers to CPUs")
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgres"),
        default=defaults.database,
        help="temp SQLite files, or temp databases on POSTGRES_URL (default: sqlite for the HTTP "
        "benchmarks, postgres for sale-propagation and event-throughput)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    options = Options(
        runs=args.runs,
        duration=args.duration,
        warmup=args.warmup,
        loadgen=args.loadgen,
        pin=args.pin,
        database=args.database,
        keep_logs=args.keep_logs,
        verbose=args.verbose,
    )
    return args.names or list(BENCHMARKS), options, args.json


def table(results: list[Result]) -> str:
    rows = [("benchmark", "measure", "value", "target", "")]
    for result in results:
        for metric in result.metrics:
            rows.append((result.benchmark, metric.name, metric.shown(), metric.target, metric.verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    names, options, json_path = parse(argv)
    results: list[Result] = []
    crashed: list[str] = []
    for name in names:
        print(f"== {name}", flush=True)
        began = time.monotonic()
        try:
            module = importlib.import_module(BENCHMARKS[name])
            result = module.run(options, log=lambda line: print(line, flush=True))
        except Exception:
            traceback.print_exc()
            crashed.append(name)
            continue
        for note in result.notes:
            print(f"  {note}")
        print(f"  ({time.monotonic() - began:.0f} s)", flush=True)
        results.append(result)
    print()
    if results:
        print(table(results))
    for name in crashed:
        print(f"{name}: CRASHED (see the traceback above)")
    if json_path:
        with open(json_path, "w") as out:
            json.dump({r.benchmark: r.details for r in results}, out, indent=2, default=str)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
