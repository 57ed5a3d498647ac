"""rights-check: what it costs that a revoked right counts at once (product rule 4).

licensing and distribution check the caller's rights against their copy of identity's
memberships; since the second edition they first compare the copy's version of the person
with the one the caller's token carries, and ask identity when the copy is older
(`shared.memberships`). This measures that on licensing's `GET .../licenses`:

- before: a token without a version (what every request was checked like until now: the copy
  alone);
- current copy: a token whose version the copy already has (every request but the first after a
  change): one more primary-key read;
- older copy: every request with a token one version newer than the copy, so each asks
  identity first (the first request of a person after each change of their rights).

Reported: current-copy ÷ before throughput (the price every request pays; target >= 0.9, our
own) and the p50 latency of each at one connection (the older copy's is what the first request
after a change costs). Set-up: identity and licensing from the Procfile on temp SQLite files
(or `--database postgres`), a customer with 10 licenses, its administrator written straight
into both databases (no broker needed: nothing here waits for an event).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from bench.common import (
    BenchSuite,
    Metric,
    Options,
    Result,
    choose_loadgen,
    cpu_split,
    info,
    median,
    member_in_identity,
    percentile,
    request_json,
    run_load,
    sequential_latencies,
)

NAME = "rights-check"
CONNECTIONS = 8
RATIO_TARGET = 0.9


def _seed(bench: BenchSuite) -> tuple[str, str]:
    """A customer with licenses in licensing, its administrator in identity and in licensing's
    copy (complete up to the person's version 1). Returns (customer number, user id)."""
    from identity.models import RIGHTS

    from shared import auth
    from shared.auth import Principal
    from shared.db import Database
    from shared.memberships import Granted, Snapshot, store

    staff = {auth.HEADER: auth.issue(bench.secret, "licensing", Principal("bench-staff", staff=True))}
    licensing = bench.web_url("licensing")
    product = {"code": "ucetnictvi", "name": "Účetnictví", "editions": ["Jazz"], "add_ons": []}
    status, body = request_json(f"{licensing}/api/v1/admin/products", "POST", product, staff)
    assert status == 201, body
    address = {"street": "Dlouhá 1", "city": "Praha", "postal_code": "11000"}
    customer = {"company_id": "25083325", "company_name": "Rychlá kontrola s.r.o.", "billing_address": address}
    status, body = request_json(f"{licensing}/api/v1/admin/customers", "POST", customer, staff)
    assert status == 201, body
    number = body["customer_number"]
    support = (date.today() + timedelta(days=365)).isoformat()
    for _ in range(10):
        license_ = {"customer_number": number, "product": "ucetnictvi", "edition": "Jazz", "seats": 1}
        status, body = request_json(
            f"{licensing}/api/v1/admin/licenses", "POST", license_ | {"support_until": support}, staff
        )
        assert status == 201, body
    user_id = str(uuid.uuid4())
    member_in_identity(
        bench.database_url("identity"),
        user_id,
        number,
        list(RIGHTS),
        company_id=customer["company_id"],
        company_name=customer["company_name"],
        email="bench-admin@example.com",
    )
    copy = Database(bench.database_url("licensing"))
    with copy.unit_of_work() as session:
        store(session, Snapshot(user_id, 1, (Granted(number, tuple(RIGHTS)),), datetime.now(UTC)))
    copy.dispose()
    return number, user_id


def measure(options: Options, log=print) -> dict:
    tool = choose_loadgen(options.loadgen)
    split = cpu_split() if options.pin else None
    client_cpus = split[0] if split else None
    with BenchSuite(["identity", "licensing"], options) as bench:
        from shared import auth
        from shared.auth import Principal

        number, user_id = _seed(bench)
        url = f"{bench.web_url('licensing')}/api/v1/customers/{number}/licenses"

        def token(version: int) -> dict[str, str]:
            principal = Principal(user_id, email="bench-admin@example.com", name="Správce", access_version=version)
            return {auth.HEADER: auth.issue(bench.secret, "licensing", principal)}

        for version in (0, 1):
            status, body = request_json(url, headers=token(version))
            assert status == 200 and len(body["items"]) == 10, (status, body)

        newer = iter(range(2, 10**9))

        def older_copy_latencies(duration: float) -> list[float]:
            # Each request needs a token of its own (one version ahead), so this runs its own loop.
            import time

            latencies = []
            end = time.monotonic() + duration
            while time.monotonic() < end:
                began = time.perf_counter()
                status, _ = request_json(url, headers=token(next(newer)))
                assert status == 200, status
                latencies.append((time.perf_counter() - began) * 1000)
            return latencies

        runs = {"before": [], "current": []}
        latency = {"before": [], "current": [], "older": []}
        for version in (0, 1):
            run_load(tool, url, token(version), connections=CONNECTIONS, duration=options.warmup, cpus=client_cpus)
        for round_number in range(options.runs):
            order = (("before", 0), ("current", 1)) if round_number % 2 == 0 else (("current", 1), ("before", 0))
            for which, version in order:
                result = run_load(
                    tool, url, token(version), connections=CONNECTIONS, duration=options.duration, cpus=client_cpus
                )
                if result.errors:
                    raise RuntimeError(f"{which}: {result.errors} failed of {result.requests}")
                runs[which].append(result)
                if options.verbose:
                    log(f"  {which:8} {result.requests_per_second:8.0f} req/s")
            for which, version in order:
                latencies, errors = sequential_latencies(url, token(version), options.duration / 2, client_cpus)
                if errors:
                    raise RuntimeError(f"{which}: {errors} failed requests at one connection")
                latency[which] += latencies
            latency["older"] += older_copy_latencies(options.duration / 2)
    before = median([r.requests_per_second for r in runs["before"]])
    current = median([r.requests_per_second for r in runs["current"]])
    return {
        "loadgen": tool,
        "pinned": bool(split),
        "before_rps": before,
        "current_rps": current,
        "ratio": current / before if before else float("nan"),
        "p50_ms": {which: percentile(values, 0.5) for which, values in latency.items()},
    }


def run(options: Options, log=print) -> Result:
    figures = measure(options, log)
    p50 = figures["p50_ms"]
    return Result(
        NAME,
        [
            Metric(
                "current copy ÷ before, throughput",
                figures["ratio"],
                "",
                f">= {RATIO_TARGET}",
                figures["ratio"] >= RATIO_TARGET,
            ),
            info("p50, copy current", p50["current"], " ms"),
            info("p50, copy older (asks identity)", p50["older"], " ms"),
            info("p50, before (copy alone)", p50["before"], " ms"),
        ],
        notes=[
            f"load generator {figures['loadgen']}, "
            f"{'pinned (client | servers)' if figures['pinned'] else 'not pinned'}, "
            f"{options.runs} x {options.duration:g} s per figure",
            f"throughput at {CONNECTIONS} connections: before {figures['before_rps']:.0f} req/s, "
            f"current copy {figures['current_rps']:.0f} req/s",
        ],
        details=figures,
    )
