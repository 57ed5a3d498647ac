"""login: how close a sign-in comes to the cost of the password hash it cannot avoid.

Target (docs/quality.md): sign-ins/s ÷ raw argon2id verifies/s on the same cores >= 0.8.

Set-up: identity and the gateway from the Procfile (nothing else takes part in a sign-in),
with SQLite files in a temp VAR_DIR (or `--database postgres`), their own EVENTS_NAMESPACE and
a random INTERNAL_AUTH_SECRET. The account is the staff account `python -m identity migrate`
creates from STAFF_EMAIL / STAFF_PASSWORD: active, its hash made by `identity.passwords` at
today's parameters (so no rehash happens). One account is enough: identity throttles FAILED
sign-ins only (`identity.limits`: 10 per account, 50 per client per 15 minutes), and a
successful one counts nowhere; every sign-in must answer 201 (more than 1 % failed requests
in a run stops the benchmark; fewer are counted in the notes).

The two rates:
- baseline (raw verifies/s): `identity.passwords.hasher.verify(<the account's stored hash>,
  <its password>)` in a loop, in a process pool with one process per server CPU, the pool
  started on the servers' CPUs (the same pinning as the servers); the sum of each process's
  count ÷ its own elapsed time. That is the most the servers' CPUs could sign in if a sign-in
  cost nothing but its hash.
- system (sign-ins/s): `POST /api/v1/sessions` with `{"email", "password"}` through the
  gateway — the gateway calls identity's `/internal/v1/credentials/verify` (throttle check,
  user lookup, argon2id verify, throttle clear) and then stores a new session — at
  CONNECTIONS keep-alive connections (wrk with a Lua script for the POST body, or the Python
  generator). Every request opens a new session row.
- p50 sign-in latency at one connection (information, no target): one sign-in without
  queueing, i.e. roughly one hash plus the two services' own work.

Workers: argon2-cffi calls the C library through cffi, which releases the GIL for the call
(measured here: two threads verifying at once use ≈ 1.9 CPUs and double the rate of one), so
a gthread worker's threads hash in parallel and threads alone could fill the CPUs. We still
give identity one worker per server CPU (at least two, the Procfile's default): the Python
parts of a sign-in (Flask, JWT checks, SQLAlchemy) do hold the GIL, and on more than one
server CPU one worker would serialise them. WEB_THREADS stays at its default (8), so with
CONNECTIONS = 8 every request finds a free thread in both services.

Measurement: a warm-up of both, then `runs` rounds, each with a baseline run, a system run
at CONNECTIONS and a system run at one connection, each `duration` seconds, the order of
baseline and system alternating from round to round so that drift (other work on a shared
machine) hits both alike; medians. While the system runs, the CPU time of identity's and the
gateway's process groups is read from /proc, giving CPU ms per sign-in for each (notes); one
verify costs 1000 ÷ (verifies/s per CPU) ms, so the notes show where the rest goes.

CPU pinning (default; `--no-pin` turns it off): the load generator on the first CPU, the
servers and the baseline pool on the other(s). Unpinned, the baseline gets every CPU and the
servers share them with the load generator.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time

from bench.common import (
    BenchSuite,
    Load,
    Metric,
    Options,
    Result,
    affinity,
    choose_loadgen,
    cpu_split,
    group_cpu_seconds,
    info,
    median,
    request_json,
    run_load,
)

NAME = "login"
PATH = "/api/v1/sessions"
CONNECTIONS = 8
RATIO_TARGET = 0.8


def _verify_for(password_hash: str, password: str, seconds: float) -> tuple[int, float]:
    """In a pool process: verify the right password for `seconds`; (verifies, elapsed)."""
    from identity.passwords import hasher

    clock = time.perf_counter
    began = clock()
    count = 0
    while clock() - began < seconds:
        if not hasher.verify(password_hash, password):
            raise RuntimeError("the password did not verify")
        count += 1
    return count, clock() - began


def _stored_hash(bench: BenchSuite) -> str:
    """The staff account's hash as identity stored it (and will verify on every sign-in)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(bench.database_url("identity"))
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT password_hash FROM users WHERE email = :email"), {"email": bench.STAFF_EMAIL}
            ).scalar_one()
    finally:
        engine.dispose()


def measure(options: Options, log=print) -> dict:
    """Start identity and the gateway, measure both rates, return medians and the raw runs."""
    tool = choose_loadgen(options.loadgen)
    split = cpu_split() if options.pin else None
    client_cpus, server_cpus = split if split else (None, None)
    processes = len(server_cpus) if server_cpus else len(os.sched_getaffinity(0))
    env = {"WEB_CONCURRENCY": str(processes)}
    with BenchSuite(["identity", "gateway"], options, extra_env=env) as bench:
        gateway = bench.web_url("gateway")
        credentials = {"email": bench.STAFF_EMAIL, "password": bench.STAFF_PASSWORD}
        status, answer = request_json(gateway + PATH, "POST", credentials)
        if status != 201 or "token" not in answer:
            raise RuntimeError(f"sign-in failed: {status} {answer}")
        password_hash = _stored_hash(bench)
        body = json.dumps(credentials).encode()
        headers = {"Content-Type": "application/json"}
        groups = {name: bench.suite.processes[name].popen.pid for name in ("identity", "gateway")}
        failures: list[int] = []

        # spawn, not fork: a clean interpreter per process, whatever threads this one runs.
        with affinity(server_cpus):
            pool = multiprocessing.get_context("spawn").Pool(processes)
        try:

            def baseline(duration: float) -> float:
                results = pool.starmap(_verify_for, [(password_hash, bench.STAFF_PASSWORD, duration)] * processes)
                rate = sum(count / elapsed for count, elapsed in results)
                if options.verbose:
                    log(f"  baseline   p={processes:<2} {rate:8.1f} verifies/s")
                return rate

            def system(connections: int, duration: float) -> tuple[Load, dict[str, float]]:
                before = {name: group_cpu_seconds(pgid) for name, pgid in groups.items()}
                result = run_load(
                    tool,
                    gateway + PATH,
                    headers,
                    connections=connections,
                    duration=duration,
                    cpus=client_cpus,
                    method="POST",
                    body=body,
                )
                cpu = {name: group_cpu_seconds(pgid) - before[name] for name, pgid in groups.items()}
                # A rare socket error of wrk's is counted and shown, a failing sign-in path is not
                # measured: more than 1 % failures stops the benchmark.
                failures.append(result.errors)
                if result.errors > 0.01 * max(1, result.requests):
                    raise RuntimeError(f"sign-ins: {result.errors} failed requests of {result.requests}")
                if options.verbose:
                    log(
                        f"  sign-ins   c={connections:<2} {result.requests_per_second:8.1f} /s"
                        f"  p50 {result.p50_ms:7.1f} ms  p99 {result.p99_ms:7.1f} ms"
                    )
                return result, cpu

            baseline(options.warmup)
            system(CONNECTIONS, options.warmup)

            verifies: list[float] = []
            runs: dict[str, list[Load]] = {"sign-ins": [], "sign-ins-1": []}
            cpu_ms: dict[str, list[float]] = {name: [] for name in groups}
            for round_number in range(options.runs):
                if round_number % 2:
                    verifies.append(baseline(options.duration))
                load, cpu = system(CONNECTIONS, options.duration)
                runs["sign-ins"].append(load)
                for name, seconds in cpu.items():
                    cpu_ms[name].append(1000 * seconds / load.requests if load.requests else float("nan"))
                if round_number % 2 == 0:
                    verifies.append(baseline(options.duration))
                runs["sign-ins-1"].append(system(1, options.duration)[0])
        finally:
            pool.terminate()
            pool.join()

    sign_ins = median([r.requests_per_second for r in runs["sign-ins"]])
    verify_rate = median(verifies)
    return {
        "loadgen": tool,
        "pinned": bool(split),
        "connections": CONNECTIONS,
        "server_cpus": processes,
        "sign_ins_per_s": sign_ins,
        "verifies_per_s": verify_rate,
        "ratio": sign_ins / verify_rate if verify_rate else float("nan"),
        "p50_ms": median([r.p50_ms for r in runs["sign-ins-1"]]),
        "loaded_p50_ms": median([r.p50_ms for r in runs["sign-ins"]]),
        "verify_cpu_ms": 1000 * processes / verify_rate if verify_rate else float("nan"),
        "cpu_ms_per_sign_in": {name: median(values) for name, values in cpu_ms.items()},
        "verifies": verifies,
        "failed_requests": sum(failures),
        "runs": {key: [vars(r) for r in value] for key, value in runs.items()},
    }


def run(options: Options, log=print) -> Result:
    figures = measure(options, log)
    cpu = figures["cpu_ms_per_sign_in"]
    return Result(
        NAME,
        [
            Metric(
                "sign-ins/s ÷ raw argon2id verifies/s",
                figures["ratio"],
                "",
                f">= {RATIO_TARGET}",
                figures["ratio"] >= RATIO_TARGET,
            ),
            info("sign-ins/s", figures["sign_ins_per_s"], "/s"),
            info("raw verifies/s", figures["verifies_per_s"], "/s"),
            info("p50 sign-in latency (1 connection)", figures["p50_ms"], " ms"),
        ],
        notes=[
            f"load generator {figures['loadgen']}, "
            f"{'pinned (client | servers)' if figures['pinned'] else 'not pinned'}, "
            f"{figures['server_cpus']} server CPU(s), {options.runs} x {options.duration:g} s per figure",
            f"sign-ins at {figures['connections']} connections: {figures['sign_ins_per_s']:.1f}/s "
            f"(p50 {figures['loaded_p50_ms']:.0f} ms); raw verifies: {figures['verifies_per_s']:.1f}/s",
            f"p50 at 1 connection: {figures['p50_ms']:.1f} ms; failed requests: {figures['failed_requests']}",
            f"CPU per sign-in: identity {cpu['identity']:.1f} ms, gateway {cpu['gateway']:.1f} ms; "
            f"one raw verify {figures['verify_cpu_ms']:.1f} ms",
        ],
        details=figures,
    )
