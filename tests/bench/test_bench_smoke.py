"""The benchmarks still run: each measurement for about a second, checked for sensible output
(never for speed — timings are the benchmarks' business, not the tests')."""

from __future__ import annotations

import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import __main__ as runner
from bench import gateway_overhead, login
from bench.common import Metric, Options, Result, _ms, _wrk_script, info, run_load, wrk_available


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
    assert "info" in runner.table([Result("demo", [info("rate", 12.5, "/s")])])


def test_the_wrk_script_sends_any_body_byte_for_byte():
    script = _wrk_script("POST", b'{"a": "\\"}')
    assert 'wrk.method = "POST"' in script
    assert 'wrk.body = "\\123\\34\\97\\34\\58\\32\\34\\92\\34\\125"' in script


def test_an_unknown_benchmark_name_is_refused():
    with pytest.raises(SystemExit):
        runner.parse(["no-such-benchmark"])


def test_the_python_load_generator_counts_requests_and_failures():
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.headers.replace_header("X-Token", "ok" if body == b"secret" else "no")
            self.do_GET()

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
        posted = run_load("python", url, {"X-Token": "-"}, connections=1, duration=0.2, method="POST", body=b"secret")
    finally:
        server.shutdown()
        server.server_close()
    assert good.requests > 0 and good.errors == 0 and good.requests_per_second > 0 and good.p50_ms > 0
    assert bad.errors > 0
    assert posted.requests > 0 and posted.errors == 0


def test_gateway_overhead_measures_both_paths():
    """Starts identity, forum and the gateway (needs RabbitMQ, like the e2e tests)."""
    options = Options(runs=1, duration=1, warmup=0.5, loadgen="auto", pin=False)
    figures = gateway_overhead.measure(options, log=lambda line: None)
    assert figures["loadgen"] == ("wrk" if wrk_available() else "python")
    for key in ("direct_rps", "proxied_rps", "ratio", "direct_p50_ms", "proxied_p50_ms"):
        assert figures[key] > 0 and math.isfinite(figures[key]), key
    assert all(len(runs) == 1 for runs in figures["runs"].values())


def test_login_measures_sign_ins_and_raw_verifies():
    """Starts identity and the gateway (needs RabbitMQ, like the e2e tests); every sign-in must
    answer 201 (login.measure raises otherwise)."""
    options = Options(runs=1, duration=1, warmup=0.5, loadgen="auto", pin=False)
    figures = login.measure(options, log=lambda line: None)
    assert figures["loadgen"] == ("wrk" if wrk_available() else "python")
    for key in ("sign_ins_per_s", "verifies_per_s", "ratio", "p50_ms", "verify_cpu_ms"):
        assert figures[key] > 0 and math.isfinite(figures[key]), key
    assert len(figures["verifies"]) == 1 and all(len(runs) == 1 for runs in figures["runs"].values())
