"""io-concurrency: does a gateway request waiting on a slow service hold up the others?

Target (docs/quality.md): 64 concurrent requests to an endpoint waiting 50 ms downstream ÷
ideal (64 / 0.05 s = 1280 req/s) >= 0.85.

Set-up: the real gateway from the Procfile (gunicorn with gunicorn.conf.py: WEB_CONCURRENCY
workers × GATEWAY_WEB_THREADS threads as the environment gives them, 2 × 32 by default), FORUM_URL
pointing at a stub (`bench.common.StubServices`: its own process, a threaded HTTP/1.1 server,
a thread per connection) that answers `GET /api/v1/forum/categories` — a path the gateway
forwards to forum as it is — after 50 ms, and IDENTITY_URL at a stub answering the sign-in's
credential check, so the session is a real one (`POST /api/v1/sessions`).

Measurement: `runs` rounds, each `duration` s at CONNECTIONS keep-alive connections (wrk, or
the Python generator), of
- **gateway**: the path through the gateway, `Authorization: Bearer <session token>`;
- **stub direct**: the stub itself, with the same load: the ceiling of this set-up (it must
  reach ≈ ideal, or the stub, not the gateway, would be measured).
Medians; the figure is gateway req/s ÷ ideal, the stub's own rate ÷ ideal beside it.

Every gateway request is in flight for at least 50 ms, so it can serve at most (requests in
flight) / 0.05 s: with gthread that is workers × threads (2 × 8 = 16 gave 320 req/s = 0.25 of
ideal, whatever the CPU, hence the gateway's own default of 32 threads: 2 × 32 = 64); beyond
that its CPU per request on its one CPU is the limit. `GATEWAY_WEB_THREADS=64 python -m bench
io-concurrency` (or `python -m bench.io_concurrency --threads 8,32,64`, one gateway per
setting) shows what other settings give.

Pinning as elsewhere: the client on CPU 0, the gateway on the other CPU(s); the stub runs on
the client's CPU (it stands for another machine, and must not take the gateway's CPU).
"""

from __future__ import annotations

import os

from bench.common import (
    STUB_SIGN_IN,
    Load,
    Metric,
    Options,
    Result,
    StubRoute,
    choose_loadgen,
    cpu_split,
    gateway_before_stubs,
    group_cpu_seconds,
    info,
    median,
    request_json,
    run_load,
)

NAME = "io-concurrency"
PATH = "/api/v1/forum/categories"
CONNECTIONS = 64
DELAY = 0.050
IDEAL = CONNECTIONS / DELAY  # 1280 req/s
TARGET = 0.85
CATEGORIES = {
    "items": [
        {"id": n, "name": name, "position": n, "topics": 10 * n, "posts": 40 * n}
        for n, name in enumerate(("Novinky", "Instalace", "Licence"))
    ],
    "next": None,
}


def stub_routes(delay: float = DELAY) -> dict[str, list[StubRoute]]:
    return {
        "identity": [STUB_SIGN_IN],
        "forum": [StubRoute("GET", PATH, delay, CATEGORIES)],
    }


def _gunicorn_settings(extra_env: dict[str, str]) -> tuple[int, int]:
    workers = int(extra_env.get("WEB_CONCURRENCY") or os.environ.get("WEB_CONCURRENCY") or 2)
    threads = int(extra_env.get("GATEWAY_WEB_THREADS") or os.environ.get("GATEWAY_WEB_THREADS") or 32)
    return workers, threads


def measure(options: Options, log=print, gateway_env: dict[str, str] | None = None) -> dict:
    """Start the stubs and the gateway (with `gateway_env` on top, e.g. {"GATEWAY_WEB_THREADS": "64"}),
    load both paths, return medians and the raw runs."""
    tool = choose_loadgen(options.loadgen)
    split = cpu_split() if options.pin else None
    client_cpus = split[0] if split else None
    gateway_env = dict(gateway_env or {})
    workers, threads = _gunicorn_settings(gateway_env)
    # 64 requests to one service at once is what this measures; the bulkhead (by default half a
    # worker's threads per service, so a hung one cannot hold them all) would refuse half of them.
    # At a worker's thread count it never binds: the gateway's concurrency is measured on its own.
    gateway_env.setdefault("UPSTREAM_MAX_IN_FLIGHT", str(threads))
    with gateway_before_stubs(stub_routes(), options, client_cpus, env=gateway_env) as (bench, stubs, gateway, bearer):
        status, answer = request_json(gateway + PATH, headers=bearer)
        if status != 200 or answer != CATEGORIES:
            raise RuntimeError(f"the gateway did not forward the stub's answer: {status} {answer}")
        targets = {
            "gateway": (gateway + PATH, bearer),
            "stub": (stubs.urls["forum"] + PATH, {"Accept": "application/json"}),
        }

        def load(which: str, duration: float) -> Load:
            url, headers = targets[which]
            result = run_load(tool, url, headers, connections=CONNECTIONS, duration=duration, cpus=client_cpus)
            if result.errors and which == "gateway":
                raise RuntimeError(f"{which}: {result.errors} failed requests of {result.requests}")
            # The stub's own run is the set-up's ceiling, not the measure: its failures (a
            # reset under a loaded machine) are counted and shown, not fatal.
            if options.verbose:
                log(
                    f"  {which:8} c={CONNECTIONS} {result.requests_per_second:7.0f} req/s"
                    f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
                )
            return result

        for which in targets:
            load(which, options.warmup)
        runs: dict[str, list[Load]] = {"gateway": [], "stub": []}
        pgid = bench.suite.processes["gateway"].popen.pid
        cpu_ms_per_request: list[float] = []
        for round_number in range(options.runs):
            order = ("gateway", "stub") if round_number % 2 == 0 else ("stub", "gateway")
            for which in order:
                before = group_cpu_seconds(pgid)
                result = load(which, options.duration)
                if which == "gateway" and result.requests:
                    cpu_ms_per_request.append((group_cpu_seconds(pgid) - before) * 1000 / result.requests)
                runs[which].append(result)
        bench.check_alive()

    gateway_rps = median([r.requests_per_second for r in runs["gateway"]])
    server_cpus = len(split[1]) if split else os.cpu_count() or 1
    cpu_ms = median(cpu_ms_per_request)
    stub_rps = median([r.requests_per_second for r in runs["stub"]])
    return {
        "loadgen": tool,
        "pinned": bool(split),
        "connections": CONNECTIONS,
        "delay_ms": DELAY * 1000,
        "ideal_rps": IDEAL,
        "workers": workers,
        "threads": threads,
        "in_flight_limit": workers * threads,
        "gateway_rps": gateway_rps,
        "stub_rps": stub_rps,
        "ratio": gateway_rps / IDEAL,
        "stub_ratio": stub_rps / IDEAL,
        "gateway_p50_ms": median([r.p50_ms for r in runs["gateway"]]),
        "stub_p50_ms": median([r.p50_ms for r in runs["stub"]]),
        "stub_errors": sum(r.errors for r in runs["stub"]),
        # The gateway's own CPU (master + workers, from /proc) per request, and the rate its
        # CPUs allow at that cost: the other ceiling besides requests in flight.
        "gateway_cpu_ms_per_request": cpu_ms,
        "server_cpus": server_cpus,
        "cpu_ceiling_rps": server_cpus * 1000 / cpu_ms if cpu_ms else float("nan"),
        "runs": {key: [vars(r) for r in value] for key, value in runs.items()},
    }


def run(options: Options, log=print) -> Result:
    figures = measure(options, log)
    limit = figures["in_flight_limit"]
    return Result(
        NAME,
        [
            Metric(
                f"{CONNECTIONS} conc. via gateway ÷ ideal",
                figures["ratio"],
                "",
                f">= {TARGET}",
                figures["ratio"] >= TARGET,
            ),
            info("stub direct ÷ ideal", figures["stub_ratio"], ""),
        ],
        notes=[
            f"load generator {figures['loadgen']}, "
            f"{'pinned (client + stub | gateway)' if figures['pinned'] else 'not pinned'}, "
            f"{options.runs} x {options.duration:g} s per figure, {CONNECTIONS} connections, stub delay "
            f"{figures['delay_ms']:g} ms, ideal {IDEAL:.0f} req/s",
            f"gateway {figures['gateway_rps']:.0f} req/s (p50 {figures['gateway_p50_ms']:.1f} ms), "
            f"stub direct {figures['stub_rps']:.0f} req/s (p50 {figures['stub_p50_ms']:.1f} ms, "
            f"{figures['stub_errors']} failed)",
            f"gateway gunicorn: {figures['workers']} workers x {figures['threads']} threads = {limit} requests in "
            f"flight at most -> ceiling {limit / DELAY:.0f} req/s = {min(1.0, limit / CONNECTIONS):.2f} of ideal",
            f"gateway CPU {figures['gateway_cpu_ms_per_request']:.2f} ms per request on {figures['server_cpus']} "
            f"CPU(s) -> CPU ceiling {figures['cpu_ceiling_rps']:.0f} req/s = "
            f"{figures['cpu_ceiling_rps'] / IDEAL:.2f} of ideal",
        ],
        details=figures,
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.io_concurrency --threads 8,32,64`: the benchmark once per gateway
    GATEWAY_WEB_THREADS setting (WEB_CONCURRENCY from `--workers` or the environment)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.io_concurrency", description=main.__doc__)
    parser.add_argument("--threads", default="8,32,64", help="GATEWAY_WEB_THREADS values, comma-separated")
    parser.add_argument("--workers", type=int, help="WEB_CONCURRENCY for the gateway")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    options = Options(
        runs=args.runs,
        duration=args.duration,
        warmup=args.warmup,
        loadgen=args.loadgen,
        pin=args.pin,
        verbose=args.verbose,
    )
    print("workers  threads  in flight  gateway req/s  ÷ ideal  stub ÷ ideal  gateway p50  CPU ms/req")
    for threads in [int(t) for t in args.threads.split(",") if t.strip()]:
        env = {"GATEWAY_WEB_THREADS": str(threads)} | ({"WEB_CONCURRENCY": str(args.workers)} if args.workers else {})
        f = measure(options, log=print, gateway_env=env)
        print(
            f"{f['workers']:>7}  {f['threads']:>7}  {f['in_flight_limit']:>9}  {f['gateway_rps']:>13.0f}"
            f"  {f['ratio']:>7.3f}  {f['stub_ratio']:>12.3f}  {f['gateway_p50_ms']:>8.1f} ms"
            f"  {f['gateway_cpu_ms_per_request']:>10.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
