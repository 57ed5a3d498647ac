"""gateway-overhead: what the gateway costs on a trivial authenticated GET.

Target (docs/quality.md): proxied ÷ direct throughput >= 0.6; added p50 latency <= 1 ms.

Set-up: identity (for the sign-in), forum and the gateway from the Procfile, with gunicorn's
settings from gunicorn.conf.py (WEB_CONCURRENCY / WEB_THREADS as the environment gives
them), SQLite files in a temp VAR_DIR (or `--database postgres`: temp PostgreSQL databases),
their own EVENTS_NAMESPACE and a random INTERNAL_AUTH_SECRET. The staff account signs in
through `POST /api/v1/sessions`; three forum categories are created so the answer is not empty.

The request: `GET /api/v1/forum/categories` (needs a signed-in user, one small query).
- direct: to forum's own port with `X-Identity: shared.auth.issue(secret, "forum",
  Principal(...))`, the principal built from the gateway's session row, i.e. exactly what
  the gateway sends (minted afresh before every run, since the token lives 60 s);
- proxied: the same path through the gateway with `Authorization: Bearer <session token>`.

Measurement: a warm-up of both paths, then `runs` rounds, each with four runs of `duration`
seconds — throughput at CONNECTIONS keep-alive connections and latency at one connection,
direct and proxied, the order alternating from round to round so that drift hits both
alike. Reported: the median of each, the ratio of the median throughputs and the difference
of the median p50 latencies (one connection: the latency the gateway adds to a request,
without queueing).

Load generator: wrk (`apt-get install wrk`) when installed, one thread; otherwise a Python
generator (threads with keep-alive http.client connections) that is GIL-bound and so gives
lower absolute throughput (the ratio is still meaningful, latency less so). The table says
which one ran.

CPU pinning (on by default, `--no-pin` turns it off): on this 2-core machine the load
generator runs on the first CPU and every server process (forum, gateway, identity) on the
other(s). Both paths then get the same server CPU budget, and the load generator never
steals cycles from the servers — without pinning, wrk, forum and the gateway's workers fight
for two cores and the ratio wanders by ±0.1 between runs. The price: the servers use one
core, so absolute throughput is about half of the machine's; the ratio is what we report.
"""

from __future__ import annotations

from bench.common import (
    BenchSuite,
    Load,
    Metric,
    Options,
    Result,
    choose_loadgen,
    cpu_split,
    median,
    request_json,
    run_load,
)

NAME = "gateway-overhead"
PATH = "/api/v1/forum/categories"
CONNECTIONS = 8
RATIO_TARGET = 0.6
ADDED_P50_TARGET_MS = 1.0


def _principal(bench: BenchSuite, token: str):
    """The principal the gateway builds for this session (from its own session row)."""
    from gateway.models import Session
    from gateway.sessions import Caller, token_hash
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session as OrmSession

    engine = create_engine(bench.database_url("gateway"))
    try:
        with OrmSession(engine) as db:
            row = db.scalars(select(Session).where(Session.token_hash == token_hash(token))).one()
            return Caller(row, via_cookie=False).principal
    finally:
        engine.dispose()


def measure(options: Options, log=print) -> dict:
    """Start the processes, load both paths, return medians and the raw runs."""
    tool = choose_loadgen(options.loadgen)
    split = cpu_split() if options.pin else None
    client_cpus = split[0] if split else None
    with BenchSuite(["identity", "forum", "gateway"], options) as bench:
        from shared import auth

        gateway, forum = bench.web_url("gateway"), bench.web_url("forum")
        status, body = request_json(
            f"{gateway}/api/v1/sessions",
            "POST",
            {"email": bench.STAFF_EMAIL, "password": bench.STAFF_PASSWORD},
        )
        if status != 201:
            raise RuntimeError(f"sign-in failed: {status} {body}")
        bearer = {"Authorization": f"Bearer {body['token']}"}
        for position, name in enumerate(("Novinky", "Instalace", "Licence")):
            status, answer = request_json(
                f"{gateway}/api/v1/admin/forum/categories", "POST", {"name": name, "position": position}, bearer
            )
            if status != 201:
                raise RuntimeError(f"creating a category failed: {status} {answer}")
        principal = _principal(bench, body["token"])

        def direct_headers() -> dict[str, str]:
            return {auth.HEADER: auth.issue(bench.secret, "forum", principal)}

        # Both paths must answer the same 200 before we time anything.
        direct_status, direct_body = request_json(forum + PATH, headers=direct_headers())
        proxied_status, proxied_body = request_json(gateway + PATH, headers=bearer)
        if (direct_status, proxied_status) != (200, 200) or direct_body != proxied_body:
            raise RuntimeError(f"the paths disagree: {direct_status} {direct_body} / {proxied_status} {proxied_body}")

        def load(which: str, connections: int, duration: float) -> Load:
            url, headers = (forum + PATH, direct_headers()) if which == "direct" else (gateway + PATH, bearer)
            result = run_load(tool, url, headers, connections=connections, duration=duration, cpus=client_cpus)
            if result.errors:
                raise RuntimeError(f"{which}: {result.errors} failed requests of {result.requests}")
            if options.verbose:
                log(
                    f"  {which:8} c={connections:<2} {result.requests_per_second:8.0f} req/s"
                    f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
                )
            return result

        for which in ("direct", "proxied"):
            load(which, CONNECTIONS, options.warmup)

        runs: dict[str, list[Load]] = {"direct": [], "proxied": [], "direct-1": [], "proxied-1": []}
        for round_number in range(options.runs):
            order = ("direct", "proxied") if round_number % 2 == 0 else ("proxied", "direct")
            for which in order:
                runs[which].append(load(which, CONNECTIONS, options.duration))
            for which in order:
                runs[f"{which}-1"].append(load(which, 1, options.duration))

    direct_rps = median([r.requests_per_second for r in runs["direct"]])
    proxied_rps = median([r.requests_per_second for r in runs["proxied"]])
    direct_p50 = median([r.p50_ms for r in runs["direct-1"]])
    proxied_p50 = median([r.p50_ms for r in runs["proxied-1"]])
    return {
        "loadgen": tool,
        "pinned": bool(split),
        "connections": CONNECTIONS,
        "direct_rps": direct_rps,
        "proxied_rps": proxied_rps,
        "ratio": proxied_rps / direct_rps if direct_rps else float("nan"),
        "direct_p50_ms": direct_p50,
        "proxied_p50_ms": proxied_p50,
        "added_p50_ms": proxied_p50 - direct_p50,
        "runs": {key: [vars(r) for r in value] for key, value in runs.items()},
    }


def run(options: Options, log=print) -> Result:
    figures = measure(options, log)
    return Result(
        NAME,
        [
            Metric(
                "proxied ÷ direct throughput",
                figures["ratio"],
                "",
                f">= {RATIO_TARGET}",
                figures["ratio"] >= RATIO_TARGET,
            ),
            Metric(
                "added p50 latency",
                figures["added_p50_ms"],
                " ms",
                f"<= {ADDED_P50_TARGET_MS:g} ms",
                figures["added_p50_ms"] <= ADDED_P50_TARGET_MS,
            ),
        ],
        notes=[
            f"load generator {figures['loadgen']}, "
            f"{'pinned (client | servers)' if figures['pinned'] else 'not pinned'}, "
            f"{options.runs} x {options.duration:g} s per figure",
            f"throughput at {figures['connections']} connections: direct {figures['direct_rps']:.0f} req/s, "
            f"proxied {figures['proxied_rps']:.0f} req/s",
            f"p50 at 1 connection: direct {figures['direct_p50_ms']:.2f} ms, "
            f"proxied {figures['proxied_p50_ms']:.2f} ms",
        ],
        details=figures,
    )
