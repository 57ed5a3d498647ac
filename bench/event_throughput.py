"""event-throughput: partner sales per second the whole event path sustains, losing nothing.

Target (docs/quality.md): sustained partner sales/s end to end (persistent, confirmed, acked,
zero loss) >= 200 sales/s, and ÷ the raw pika publish-confirm-consume rate >= 0.25.

End to end, for a sale: `POST /api/v1/partner/sales` answered 201 (through the gateway; the
license and its `licensing.license.issued` event committed in one transaction) → licensing's
relay published the event, persistent and `mandatory`, and the broker confirmed it → every
consumer the catalogue lists for the event (today distribution: its entitlement replica)
applied it, committed and acked. A run POSTs sales for `duration` s as fast as the system
answers them (CONNECTIONS keep-alive connections, wrk with a Lua script making every sale new —
its own partner_sale_id and Idempotency-Key — or the Python generator), then waits until
every accepted sale's event has been applied by every consumer; the rate is

    sales accepted in the run ÷ (last of them applied downstream − first POST)

so a backlog in the relay or the consumer counts against the run, not after it. "Applied" is
seen from the side (bench.common.AppliedObserver: a trigger on each consumer's inbox NOTIFYs
at commit; the inbox row is written in the same transaction as the entitlement row).

Zero loss (checked over the whole benchmark, warm-up included): licenses licensing accepted
for the partner == `licensing.license.issued` rows in its outbox == events each consumer
applied (its inbox: one row per event id, so a duplicate delivery cannot count twice) ==
distinct event ids the observer saw committed; nothing in the consumers' dead-letter queues;
no request refused. A difference is a MISS whatever the rate. (wrk drops the answers still in
flight when a run ends, up to one per connection, so "accepted" is licensing's count.)
Sales go to a pool of 20 customers created beforehand by staff, so each sale is exactly one
event (a sale to a new company would add `licensing.customer.created`).

Baseline (same run, same machine): raw pika with the events' own size (median body of the
outbox rows written in the warm-up): one durable quorum queue (like `<consumer>.events`),
persistent messages, one publisher with confirms — pika's BlockingChannel, each publish
waits for its confirm, exactly as the relay publishes — and one consumer with manual acks at
the services' prefetch (20), each in its own process on the servers' CPUs; messages consumed
÷ (last receipt − first publish) (`bench.common.RawPika.throughput`).

PostgreSQL by default (`--database sqlite` possible): with SQLite every web worker, the relay
and the consumer serialise on one writer lock per database file and the relay polls every 20
ms, so the figure would be SQLite's; compose runs PostgreSQL. Processes: identity (staff
sign-in), licensing, the gateway, licensing-relay, `<consumer>-consumer` per consumer;
gunicorn as in gunicorn.conf.py (WEB_CONCURRENCY 2 × WEB_THREADS 8 unless set).

Measurement: warm-up (`warmup` s of load, all applied), then `runs` rounds of a raw-pika run
and a system run of `duration` s each, order alternating; medians. CPU pinning (default): the
load generator and the observer thread on the first CPU, every server process and the
raw-pika processes on the other(s); PostgreSQL and RabbitMQ are not pinned. The notes give
each process group's CPU ms per sale (from /proc), which is where the time goes.
"""

from __future__ import annotations

import secrets
import time

from bench.common import (
    SALE_EVENT,
    AppliedObserver,
    BenchSuite,
    Metric,
    Options,
    PartnerChannel,
    RawPika,
    Result,
    choose_loadgen,
    closed_loop_posts,
    cpu_split,
    event_consumers,
    group_cpu_seconds,
    info,
    median,
    named_cpu_seconds,
    outbox_events,
    wrk_script_load,
)
from bench.sale_propagation import suite_processes

NAME = "event-throughput"
CONNECTIONS = 16
RATE_TARGET = 200.0
RATIO_TARGET = 0.25
APPLY_TIMEOUT = 120.0
# Servers we do not start (whole-machine CPU, by command name), beside our process groups.
SERVERS = {"postgresql (all)": ("postgres",), "rabbitmq (all)": ("beam.smp",)}


def _count(database_url: str, sql: str, **params) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql), params).scalar_one())
    finally:
        engine.dispose()


def _dead_letters(bench: BenchSuite, consumers: list[str]) -> int:
    import pika

    from shared.topology import Topology

    topology = Topology(bench.namespace)
    connection = pika.BlockingConnection(pika.URLParameters(bench.amqp_url))
    try:
        channel = connection.channel()
        return sum(
            channel.queue_declare(topology.dead_letter_queue(c), passive=True).method.message_count for c in consumers
        )
    finally:
        connection.close()


def measure(options: Options, log=print) -> dict:
    consumers = event_consumers(SALE_EVENT)
    if not consumers:
        raise RuntimeError(f"nobody consumes {SALE_EVENT} (shared/events.yaml)")
    tool = choose_loadgen(options.loadgen)
    split = cpu_split() if options.pin else None
    client_cpus, server_cpus = split if split else (None, None)
    components = ["identity", "licensing", "gateway", *[c for c in consumers if c not in ("identity", "licensing")]]
    processes = suite_processes(consumers)
    with BenchSuite(components, options, processes=processes, default_database="postgres") as bench:
        channel = PartnerChannel(bench)
        licensing_db = bench.database_url("licensing")
        tag = secrets.token_hex(3)
        groups = {name: bench.suite.processes[name].popen.pid for name in processes}
        answered = [0]
        warm_errors = [0]

        def system(name: str, seconds: float) -> dict:
            prefix = f"{tag}-{name}-"
            before = {c: set(seen) for c, seen in observer.applied.items()}
            cpu_before = {g: group_cpu_seconds(pid) for g, pid in groups.items()}
            cpu_before.update({g: named_cpu_seconds(names) for g, names in SERVERS.items()})
            started = time.time()
            if tool == "wrk":
                load = wrk_script_load(
                    channel.sales_url,
                    channel.wrk_script(prefix),
                    connections=CONNECTIONS,
                    duration=seconds,
                    cpus=client_cpus,
                )
            else:
                load = closed_loop_posts(
                    channel.sales_url,
                    lambda i: channel.request(f"{prefix}{i}", i),
                    connections=CONNECTIONS,
                    duration=seconds,
                    cpus=client_cpus,
                )
            posted_until = time.time()
            accepted = _count(
                licensing_db, "SELECT count(*) FROM licenses WHERE partner_sale_id LIKE :p", p=prefix + "%"
            )
            answered[0] += load.requests - load.errors
            expected = {c: len(before[c]) + accepted for c in consumers}
            complete = observer.wait_for(min(expected.values()), APPLY_TIMEOUT, bench.check_alive)
            cpu = {g: group_cpu_seconds(pid) - cpu_before[g] for g, pid in groups.items()}
            cpu.update({g: named_cpu_seconds(names) - cpu_before[g] for g, names in SERVERS.items()})
            with observer.condition:
                new = {c: {e: t for e, t in observer.applied[c].items() if e not in before[c]} for c in consumers}
            last = max((max(times.values(), default=started) for times in new.values()), default=started)
            rate = accepted / (last - started) if complete and last > started else 0.0
            figures = {
                "accepted": accepted,
                "errors": load.errors,
                "post_rate": load.requests_per_second,
                "post_p50_ms": load.p50_ms,
                "post_p99_ms": load.p99_ms,
                "drain_s": last - posted_until,
                "complete": complete,
                "rate": rate,
                "cpu_ms_per_sale": {g: 1000 * s / accepted if accepted else float("nan") for g, s in cpu.items()},
            }
            if options.verbose:
                log(
                    f"  system     {rate:7.1f} sales/s end to end ({accepted} sales; "
                    f"POSTs {load.requests_per_second:.1f}/s, p50 {load.p50_ms:.0f} ms; "
                    f"backlog drained {figures['drain_s'] * 1000:.0f} ms after the last POST)"
                )
            return figures

        urls = {consumer: bench.database_url(consumer) for consumer in consumers}
        with AppliedObserver(urls, SALE_EVENT, cpus=client_cpus) as observer:
            warm_errors[0] = system("warmup", options.warmup)["errors"]
            size = int(median([e["size"] for e in outbox_events(licensing_db).values()]))
            raw_rates: list[float] = []
            runs: list[dict] = []
            with RawPika(bench.amqp_url, bench.namespace, size, cpus=server_cpus) as raw:
                raw.throughput(min(options.warmup, 2.0))
                for round_number in range(options.runs):
                    order = ("raw", "system") if round_number % 2 == 0 else ("system", "raw")
                    for which in order:
                        if which == "raw":
                            raw_rates.append(raw.throughput(options.duration))
                            if options.verbose:
                                log(f"  raw pika   {raw_rates[-1]:7.1f} msg/s publish-confirm-consume-ack")
                        else:
                            runs.append(system(f"r{round_number}", options.duration))
            time.sleep(0.3)
            seen = {c: len(v) for c, v in observer.applied.items()}
        licenses = _count(licensing_db, "SELECT count(*) FROM licenses WHERE partner_id = :p", p=channel.partner_id)
        outboxed = _count(licensing_db, "SELECT count(*) FROM outbox WHERE routing_key = :t", t=SALE_EVENT)
        inboxed = {
            c: _count(bench.database_url(c), "SELECT count(*) FROM inbox WHERE event_type = :t", t=SALE_EVENT)
            for c in consumers
        }
        dead = _dead_letters(bench, consumers)

    # Every sale licensing accepted (committed) must be exactly one event in its outbox and one
    # applied event in each consumer; none may sit in a dead-letter queue.
    mismatch = abs(outboxed - licenses) + sum(abs(n - licenses) for n in inboxed.values()) + dead
    failed = sum(r["errors"] for r in runs) + warm_errors[0]
    rate = median([r["rate"] for r in runs])
    raw_rate = median(raw_rates)
    cpu = {g: median([r["cpu_ms_per_sale"][g] for r in runs]) for g in runs[0]["cpu_ms_per_sale"]}
    return {
        "loadgen": tool,
        "pinned": bool(split),
        "database": bench.database,
        "connections": CONNECTIONS,
        "consumers": consumers,
        "message_size": size,
        "sales_per_s": rate,
        "raw_per_s": raw_rate,
        "ratio": rate / raw_rate if raw_rate else float("nan"),
        "post_rate": median([r["post_rate"] for r in runs]),
        "post_p50_ms": median([r["post_p50_ms"] for r in runs]),
        "drain_ms": 1000 * median([r["drain_s"] for r in runs]),
        "zero_loss": {
            "answered_201": answered[0],
            "licenses": licenses,
            "outbox_events": outboxed,
            "inbox_events": inboxed,
            "observed": seen,
            "dead_letters": dead,
            "failed_requests": failed,
            "mismatch": mismatch,
            "consistent": mismatch == 0 and failed == 0,
        },
        "cpu_ms_per_sale": cpu,
        "runs": runs,
        "raw_runs": raw_rates,
    }


def run(options: Options, log=print) -> Result:
    f = measure(options, log)
    loss = f["zero_loss"]
    cpu = f["cpu_ms_per_sale"]
    return Result(
        NAME,
        [
            Metric(
                "sales/s end to end",
                f["sales_per_s"],
                "/s",
                f">= {RATE_TARGET:g}/s",
                f["sales_per_s"] >= RATE_TARGET and loss["consistent"],
            ),
            Metric(
                "÷ raw pika publish-confirm-consume",
                f["ratio"],
                "",
                f">= {RATIO_TARGET}",
                f["ratio"] >= RATIO_TARGET and loss["consistent"],
            ),
            Metric(
                "sales lost, duplicated or refused",
                float(loss["mismatch"] + loss["failed_requests"]),
                "",
                "0",
                loss["consistent"],
            ),
            info("raw pika msg/s", f["raw_per_s"], "/s"),
        ],
        notes=[
            f"load generator {f['loadgen']} at {f['connections']} connections through the gateway, {f['database']}, "
            f"{'pinned (client | servers)' if f['pinned'] else 'not pinned'}, consumers: {', '.join(f['consumers'])}, "
            f"event {f['message_size']} bytes",
            f"end to end {f['sales_per_s']:.1f} sales/s (POSTs answered at {f['post_rate']:.1f}/s, p50 "
            f"{f['post_p50_ms']:.0f} ms; last event applied {f['drain_ms']:.0f} ms after the last POST); "
            f"raw pika {f['raw_per_s']:.0f} msg/s",
            f"zero loss: licenses accepted {loss['licenses']} (201s read by the load generator {loss['answered_201']}; "
            f"wrk drops the answers in flight when a run ends), outbox events {loss['outbox_events']}, applied "
            f"{loss['inbox_events']}, observed committed {loss['observed']}, dead letters {loss['dead_letters']}, "
            f"failed requests {loss['failed_requests']}",
            "CPU ms per sale: " + ", ".join(f"{g} {v:.2f}" for g, v in sorted(cpu.items(), key=lambda kv: -kv[1])),
        ],
        details=f,
    )
