"""The benchmarks still run: each measurement for about a second, checked for sensible output
(never for speed — timings are the benchmarks' business, not the tests')."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import __main__ as runner
from bench import event_throughput, gateway_overhead, login, rights_check, sale_propagation
from bench.common import (
    Metric,
    Options,
    PartnerChannel,
    Result,
    _ms,
    _wrk_script,
    info,
    percentile,
    run_load,
    valid_company_id,
    wrk_available,
    wrk_script_load,
)
from shared import company_id


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


def test_rights_check_measures_the_three_kinds_of_check():
    """Starts identity and licensing; every request must answer 200 (rights_check raises otherwise),
    the ones with a newer token only after licensing asked identity."""
    options = Options(runs=1, duration=1, warmup=0.5, loadgen="auto", pin=False)
    figures = rights_check.measure(options, log=lambda line: None)
    assert figures["before_rps"] > 0 and figures["current_rps"] > 0 and math.isfinite(figures["ratio"])
    assert set(figures["p50_ms"]) == {"before", "current", "older"}
    assert all(value > 0 for value in figures["p50_ms"].values())


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99 and percentile(values, 1.0) == 100
    assert percentile([7.0], 0.99) == 7.0 and math.isnan(percentile([], 0.5))


def test_the_benchmarks_company_ids_are_valid():
    assert all(company_id.is_valid(valid_company_id(4_200_000 + seed)) for seed in range(50))


@pytest.mark.skipif(not wrk_available(), reason="wrk is not installed")
def test_the_wrk_sales_script_posts_a_new_valid_sale_every_time():
    """Every request of the Lua script is a different sale: its own partner_sale_id and the
    same string as Idempotency-Key, a JSON body, the customers in turn."""
    channel = PartnerChannel.__new__(PartnerChannel)
    channel.api_key = "cc_abc_secret"
    channel.customers = [
        {
            "company_id": valid_company_id(seed),
            "company_name": f"Firma {seed} – š",
            "customer_number": str(100001 + seed),
            "billing_address": {"street": "Dlouhá 1", "city": "Praha", "postal_code": "110 00"},
        }
        for seed in range(3)
    ]
    seen: list[tuple[dict, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((body, dict(self.headers)))
            self.send_response(201)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/partner/sales"
        load = wrk_script_load(url, channel.wrk_script("run1-"), connections=2, duration=1)
    finally:
        server.shutdown()
        server.server_close()
    assert load.requests > 3 and load.errors == 0
    ids = [body["partner_sale_id"] for body, _ in seen]
    assert len(set(ids)) == len(ids) and all(i.startswith("run1-") for i in ids)
    assert all(headers["Idempotency-Key"] == body["partner_sale_id"] for body, headers in seen)
    assert all(headers["Authorization"] == "Bearer cc_abc_secret" for _, headers in seen)
    assert {body["customer"]["customer_number"] for body, _ in seen} == {"100001", "100002", "100003"}
    assert seen[0][0]["customer"]["company_name"].startswith("Firma")


def test_sale_propagation_measures_sales_and_the_raw_pika_baseline():
    """Starts identity, licensing, the gateway, licensing's relay and the event's consumers on
    PostgreSQL (needs RabbitMQ and PostgreSQL, like the integration tests): 20 sales at 20/s."""
    options = Options(runs=1, duration=1, warmup=0.5, pin=False)
    figures = sale_propagation.measure(options, log=lambda line: None)
    assert figures["database"] == "postgres" and figures["sales"] == 20
    for key in ("p50_ms", "p99_ms", "raw_p50_ms", "raw_p99_ms", "ratio_p50"):
        assert figures[key] > 0 and math.isfinite(figures[key]), key
    assert figures["message_size"] > 100


def test_event_throughput_counts_every_sale_applied_and_none_lost():
    """The same processes; about a second of sales as fast as they go, then the check that
    every accepted sale was applied once downstream."""
    options = Options(runs=1, duration=1, warmup=0.5, pin=False)
    figures = event_throughput.measure(options, log=lambda line: None)
    loss = figures["zero_loss"]
    assert loss["consistent"], loss
    assert loss["licenses"] > 0 and loss["dead_letters"] == 0
    for key in ("sales_per_s", "raw_per_s", "ratio"):
        assert figures[key] > 0 and math.isfinite(figures[key]), key


def test_download_measures_every_path_on_a_small_file():
    from bench import download

    options = Options(runs=1, duration=1, warmup=0.5, pin=False)
    result = download.run(options, log=lambda line: None, size=4 * 1024 * 1024 + 3)
    figures = result.details
    assert figures["size"] == 4 * 1024 * 1024 + 3
    for key in ("sendfile", "direct", "gateway"):
        for kind in ("full", "resumed"):
            assert figures["mb_per_s"][f"{key}-{kind}"] > 0
    for ratio in ("direct_full", "direct_resumed", "gateway_full", "gateway_resumed"):
        assert math.isfinite(figures[ratio]) and figures[ratio] > 0
    assert figures["distribution_rss_growth_mb"] >= 0
    assert [m.name for m in result.metrics][:3] == [
        "direct ÷ sendfile, whole file",
        "direct ÷ sendfile, resumed (Range)",
        "distribution worker RSS growth",
    ]


def test_the_sendfile_baseline_answers_ranges_byte_exact(tmp_path):
    from bench import download

    source = tmp_path / "file.bin"
    download.make_file(source, 100_000)
    data = source.read_bytes()
    with download.sendfile_server(source, None) as url:
        whole = download.stream_get(url, digest=True)
        assert (whole.status, whole.length) == (200, len(data))
        part = download.stream_get(url, {"Range": "bytes=99000-"}, digest=True)
        assert part.status == 206 and part.headers["content-range"] == "bytes 99000-99999/100000"
        assert part.length == 1000
        tail = download.stream_get(url, {"Range": "bytes=-10"})
        assert tail.status == 206 and tail.length == 10
        assert download.stream_get(url, {"Range": "bytes=100000-"}).status == 416
