"""profile-fanout and io-concurrency still run: about a second of load each, checked for
sensible output (never for speed)."""

from __future__ import annotations

import math

from bench import io_concurrency, profile_fanout
from bench.common import Options, StubRoute, StubServices, sequential_latencies


def test_a_stub_answers_its_routes_after_their_delay_and_404_otherwise():
    with StubServices({"svc": [StubRoute("GET", "/slow", 0.02, {"ok": True})]}) as stubs:
        latencies, errors = sequential_latencies(stubs.urls["svc"] + "/slow?x=1", {}, 0.3)
        assert errors == 0 and len(latencies) >= 3 and min(latencies) >= 20
        missing, failures = sequential_latencies(stubs.urls["svc"] + "/nothing", {}, 0.1)
        assert missing == [] and failures > 0


def test_the_fanout_stubs_answer_every_part_of_the_overview():
    from gateway.overview import PARTS

    routes = profile_fanout.stub_routes()
    assert {part.service for part in PARTS} <= set(routes)
    assert any(r.path == "/internal/v1/credentials/verify" for r in routes["identity"])
    assert max(r.delay for rs in routes.values() for r in rs) == profile_fanout.DELAYS[profile_fanout.SLOWEST]


def test_profile_fanout_measures_the_overview_and_the_slowest_call():
    """Starts the gateway (needs RabbitMQ, like the e2e tests) in front of the stubs."""
    options = Options(runs=1, duration=1, warmup=0.5, pin=False)
    figures = profile_fanout.measure(options, log=lambda line: None)
    assert figures["requests"]["overview"] > 5 and figures["requests"]["baseline"] > 5
    for key in ("overview_p50_ms", "overview_p99_ms", "baseline_p50_ms", "ratio_p50", "ratio_p99"):
        assert figures[key] > 0 and math.isfinite(figures[key]), key
    assert figures["baseline_p50_ms"] >= 40  # the stub did wait


def test_io_concurrency_measures_the_gateway_and_the_stub():
    """Starts the gateway (needs RabbitMQ) in front of a 50 ms stub, 64 connections."""
    options = Options(runs=1, duration=1, warmup=0.5, pin=False)
    figures = io_concurrency.measure(options, log=lambda line: None)
    assert figures["in_flight_limit"] == figures["workers"] * figures["threads"]
    for key in ("gateway_rps", "stub_rps", "ratio", "stub_ratio", "gateway_cpu_ms_per_request"):
        assert figures[key] > 0 and math.isfinite(figures[key]), key
    assert all(len(runs) == 1 for runs in figures["runs"].values())
