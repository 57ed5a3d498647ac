"""profile-fanout: does the profile view cost its slowest part, not the sum of its parts?

Target (docs/quality.md): overview latency ÷ slowest single backend call, backends delayed
10/20/40 ms: p50 <= 1.15, p99 <= 1.4.

Set-up: the real gateway from the Procfile (gunicorn, gunicorn.conf.py, its own SQLite or
PostgreSQL database, a random INTERNAL_AUTH_SECRET), with IDENTITY_URL, LICENSING_URL,
DISTRIBUTION_URL and FORUM_URL pointing at stub backends (`bench.common.StubServices`: one
process, a threaded HTTP/1.1 server per service on a free port) that answer the overview's
five paths (`gateway.overview.PARTS`) with realistic JSON after fixed delays:

    identity      /api/v1/customers/{n}/profile     10 ms
    licensing     /api/v1/customers/{n}/licenses    20 ms
    distribution  /api/v1/customers/{n}/downloads   40 ms   <- the slowest single call
    distribution  /api/v1/customers/{n}/news        20 ms
    forum         /api/v1/forum/topics?limit=5      10 ms

The stub identity also answers the sign-in's credential check
(`POST /internal/v1/credentials/verify` → the user), so the session is a real one, opened by
`POST /api/v1/sessions` on the gateway.

Measurement, one connection (latency without queueing), `runs` rounds of `duration` s each,
the order alternating:
- **overview**: `GET /api/v1/customers/{n}/overview` through the gateway, Bearer session;
  every answer must be 200 with no part `unavailable`;
- **baseline**: the slowest backend call (the 40 ms downloads path) asked directly of the
  stub, in the same run, from the same client CPU.
Percentiles are over every request of every measured run (5 × 5 s ≈ 550 overviews). Ratios:
overview p50 ÷ baseline p50 and overview p99 ÷ baseline p99.

Pinning as elsewhere: the client on CPU 0, the gateway on the other CPU(s). The stubs run on
the client's CPU: they stand for other machines, and must not take the gateway's CPU.
"""

from __future__ import annotations

from bench.common import (
    STUB_SIGN_IN,
    Metric,
    Options,
    Result,
    StubRoute,
    cpu_split,
    gateway_before_stubs,
    info,
    percentile,
    request_json,
    sequential_latencies,
)

NAME = "profile-fanout"
CUSTOMER = "100001"
P50_TARGET = 1.15
P99_TARGET = 1.4
DELAYS = {"profile": 0.010, "licenses": 0.020, "downloads": 0.040, "news": 0.020, "forum": 0.010}
SLOWEST = "downloads"


def _bodies() -> dict[str, object]:
    """What the services answer, about as large as a real profile's parts."""
    profile = {
        "customer_number": CUSTOMER,
        "company_id": "25596641",
        "company_name": "Acme s.r.o.",
        "billing_address": {"street": "Hlavní 1", "city": "Praha", "postal_code": "110 00", "country": "CZ"},
        "delivery_address": None,
        "delivery_method": "download",
    }
    licenses = {
        "items": [
            {
                "installation_number": f"INST-{n:05d}",
                "product": ("ucetnictvi", "sklady", "mzdy")[n % 3],
                "edition": ("Standard", "Profi")[n % 2],
                "add_ons": ["Mzdy"] if n % 2 else [],
                "status": "registered",
                "seats": 1 + n % 5,
                "support_until": f"20{26 + n % 3}-{1 + n % 12:02d}-15",
            }
            for n in range(12)
        ],
        "next": None,
    }
    downloads = {
        "items": [
            {
                "release_id": n,
                "product": "ucetnictvi",
                "version": f"2026.{n}",
                "released_on": f"2026-{1 + n % 12:02d}-01",
                "notes": "Opravy a vylepšení. " * 5,
                "files": [{"name": f"setup-2026.{n}.exe", "size": 250_000_000 + n, "sha256": "ab" * 32}],
            }
            for n in range(10)
        ],
        "next": None,
    }
    news = {
        "items": [
            {
                "id": n,
                "kind": "news",
                "title": f"Nová verze 2026.{n}",
                "published_at": f"2026-{1 + n:02d}-01T08:00:00+00:00",
            }
            for n in range(8)
        ]
        + [
            {
                "id": 100 + n,
                "kind": "training",
                "title": "Školení Praha",
                "starts_at": f"2099-0{1 + n}-10T09:00:00+00:00",
            }
            for n in range(4)
        ],
        "next": None,
    }
    forum = {
        "items": [
            {
                "id": n,
                "title": f"Dotaz k instalaci {n}",
                "category_id": 1,
                "replies": n,
                "last_post_at": "2026-11-01T10:00:00+00:00",
            }
            for n in range(5)
        ],
        "next": None,
    }
    return {"profile": profile, "licenses": licenses, "downloads": downloads, "news": news, "forum": forum}


def stub_routes(delays: dict[str, float] | None = None) -> dict[str, list[StubRoute]]:
    """The four services' stubs: the overview's parts with their delays, plus identity's
    credential check (immediate)."""
    from gateway.overview import PARTS

    delays = delays or DELAYS
    bodies = _bodies()
    services: dict[str, list[StubRoute]] = {"identity": [STUB_SIGN_IN]}
    for part in PARTS:
        path = part.path.format(n=CUSTOMER).split("?", 1)[0]
        services.setdefault(part.service, []).append(StubRoute("GET", path, delays[part.name], bodies[part.name]))
    return services


def slowest_path() -> tuple[str, str]:
    from gateway.overview import PARTS

    part = next(p for p in PARTS if p.name == SLOWEST)
    return part.service, part.path.format(n=CUSTOMER)


def measure(options: Options, log=print) -> dict:
    split = cpu_split() if options.pin else None
    client_cpus = split[0] if split else None
    with gateway_before_stubs(stub_routes(), options, client_cpus) as (bench, stubs, gateway, bearer):
        overview_url = f"{gateway}/api/v1/customers/{CUSTOMER}/overview"
        status, view = request_json(overview_url, headers=bearer)
        if status != 200 or view.get("unavailable") or view.get("restricted"):
            raise RuntimeError(f"the overview is not whole: {status} {view}")
        service, path = slowest_path()
        baseline_url = stubs.urls[service] + path
        urls = {"overview": (overview_url, bearer), "baseline": (baseline_url, {"Accept": "application/json"})}

        def load(which: str, duration: float) -> list[float]:
            url, headers = urls[which]
            latencies, errors = sequential_latencies(url, headers, duration, client_cpus)
            if errors:
                raise RuntimeError(f"{which}: {errors} failed requests")
            if options.verbose:
                log(
                    f"  {which:8} n={len(latencies):<4} p50 {percentile(latencies, 0.5):6.2f} ms"
                    f"  p99 {percentile(latencies, 0.99):6.2f} ms"
                )
            return latencies

        for which in urls:
            load(which, options.warmup)
        runs: dict[str, list[list[float]]] = {"overview": [], "baseline": []}
        for round_number in range(options.runs):
            order = ("overview", "baseline") if round_number % 2 == 0 else ("baseline", "overview")
            for which in order:
                runs[which].append(load(which, options.duration))
        bench.check_alive()
        # The view must still have been whole at the end (no part timed out under load).
        status, view = request_json(overview_url, headers=bearer)
        if status != 200 or view.get("unavailable"):
            raise RuntimeError(f"the overview lost parts: {status} {view.get('unavailable')}")

    every = {which: [x for run in value for x in run] for which, value in runs.items()}
    figures = {
        "loadgen": "python (1 connection, sequential)",
        "pinned": bool(split),
        "delays_ms": {name: delay * 1000 for name, delay in DELAYS.items()},
        "requests": {which: len(values) for which, values in every.items()},
    }
    for which, values in every.items():
        figures[f"{which}_p50_ms"] = percentile(values, 0.5)
        figures[f"{which}_p99_ms"] = percentile(values, 0.99)
    figures["ratio_p50"] = figures["overview_p50_ms"] / figures["baseline_p50_ms"]
    figures["ratio_p99"] = figures["overview_p99_ms"] / figures["baseline_p99_ms"]
    figures["ratio_p99_to_baseline_p50"] = figures["overview_p99_ms"] / figures["baseline_p50_ms"]
    figures["sum_of_delays_ms"] = sum(DELAYS.values()) * 1000
    figures["runs"] = {
        which: [{"n": len(r), "p50_ms": percentile(r, 0.5), "p99_ms": percentile(r, 0.99)} for r in value]
        for which, value in runs.items()
    }
    return figures


def run(options: Options, log=print) -> Result:
    figures = measure(options, log)
    return Result(
        NAME,
        [
            Metric(
                "overview ÷ slowest call, p50",
                figures["ratio_p50"],
                "",
                f"<= {P50_TARGET}",
                figures["ratio_p50"] <= P50_TARGET,
            ),
            Metric(
                "overview ÷ slowest call, p99",
                figures["ratio_p99"],
                "",
                f"<= {P99_TARGET}",
                figures["ratio_p99"] <= P99_TARGET,
            ),
            info("overview p50", figures["overview_p50_ms"], " ms"),
        ],
        notes=[
            f"client: {figures['loadgen']}, "
            f"{'pinned (client + stubs | gateway)' if figures['pinned'] else 'not pinned'}, "
            f"{options.runs} x {options.duration:g} s per figure, {figures['requests']['overview']} overviews, "
            f"{figures['requests']['baseline']} baseline calls",
            "backend delays: "
            + ", ".join(f"{name} {ms:g} ms" for name, ms in figures["delays_ms"].items())
            + f" (sum {figures['sum_of_delays_ms']:g} ms: what a sequential view would take)",
            f"overview: p50 {figures['overview_p50_ms']:.2f} ms, p99 {figures['overview_p99_ms']:.2f} ms; "
            f"slowest call direct: p50 {figures['baseline_p50_ms']:.2f} ms, p99 {figures['baseline_p99_ms']:.2f} ms",
            f"overview p99 ÷ slowest call p50: {figures['ratio_p99_to_baseline_p50']:.3f}",
        ],
        details=figures,
    )
