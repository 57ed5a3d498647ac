"""The benchmarks still run: each measurement for about a second, checked for sensible output
(never for speed — timings are the benchmarks' business, not the tests')."""

from __future__ import annotations

import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import __main__ as runner
from bench import gateway_overhead
from bench.common import Metric, Options, Result, _ms, run_load, wrk_available


def test_wrk_latency_units_are_read_as_milliseconds():
    assert _ms("850.00us") == pytest.approx(0.85)
    assert _ms("1.25ms") == pytest.approx(1.25)
    assert _ms("2.00s") == pytest.approx(2000)


def test_the_table_names_each_measure_and_its_verdict():
    result = Result(
        "demo", [Metric("ratio", 0.7, "", ">= 0.6", True), Metric("added p50", 1.5, " ms", "<= 1 ms", False)]
    )
    table = runner.table([result])
    assert "demo" in table and "PASS" in table and "MISS" in table and "1.500 ms" in table


def test_an_unknown_benchmark_name_is_refused():
    with pytest.raises(SystemExit):
        runner.parse(["no-such-benchmark"])


def test_the_python_load_generator_counts_requests_and_failures():
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            status = 200 if self.headers.get("X-Token") == "ok" else 401
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/x"
        good = run_load("python", url, {"X-Token": "ok"}, connections=2, duration=0.3)
        bad = run_load("python", url, {"X-Token": "no"}, connections=1, duration=0.2)
    finally:
        server.shutdown()
        server.server_close()
    assert good.requests > 0 and good.errors == 0 and good.requests_per_second > 0 and good.p50_ms > 0
    assert bad.errors > 0


def test_gateway_overhead_measures_both_paths():
    """Starts identity, forum and the gateway (needs RabbitMQ, like the e2e tests)."""
    options = Options(runs=1, duration=1, warmup=0.5, loadgen="auto", pin=False)
    figures = gateway_overhead.measure(options, log=lambda line: None)
    assert figures["loadgen"] == ("wrk" if wrk_available() else "python")
    for key in ("direct_rps", "proxied_rps", "ratio", "direct_p50_ms", "proxied_p50_ms"):
        assert figures[key] > 0 and math.isfinite(figures[key]), key
    assert all(len(runs) == 1 for runs in figures["runs"].values())
