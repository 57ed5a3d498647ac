"""sale-propagation: how long a partner's sale takes to reach the services that act on it.

Target (docs/quality.md): "partner sale accepted → license visible in the licenses list, at
20 sales/s: p50 <= 30 ms, p99 <= 200 ms".

What is measured, and why not literally "visible in the licenses list": a partner-sold
license is `unregistered` and by design (rule 9, licensing's contract) it is NOT listed in
`GET /api/v1/customers/{n}/licenses` until a member of that profile registers it with its
installation number (`POST .../product-registrations`), which is a person's act, days later,
not part of the system's latency. And once registered, the license is listed by the very
transaction that registered it (licensing's own database, read after write): that hop has no
propagation to measure. What a sale does propagate is its event: licensing writes
`licensing.license.issued` in the sale's transaction (outbox) → its relay publishes it
(persistent, mandatory, confirmed) → RabbitMQ → every consumer the catalogue lists for it
(today distribution, which keeps its entitlement replica from it) applies it and commits.
So the figure is, for each sale:

    201 answered to the partner  →  the last consumer of `licensing.license.issued` COMMITTED
                                     the effect (distribution's `entitlements` row exists)

observed from the side, not by polling: a trigger the benchmark puts on each consumer's
`inbox` (in its own throw-away database) NOTIFYs at commit, and a listening thread stamps the
arrival (`bench.common.AppliedObserver`). The inbox row is written in the same transaction
as the entitlement row (shared/consumer.py), so the notification arrives exactly when the
replica row becomes visible. Also reported (information): the same from the moment the
request was sent, and where the time goes, from the services' own timestamps (outbox
`created_at` = in the sale's transaction, `published_at` = after the broker confirmed,
the consumer's inbox `processed_at` = when it began applying).

Load: an open-loop schedule — sale i is due at start + i / 20 s whatever happened to the
earlier ones (a slow answer never delays the next sale; it waits for a free one of 8 client
threads with keep-alive connections, and the notes show how late sales were sent). Sales go
through the gateway (`POST /api/v1/partner/sales`, Bearer API key, a new Idempotency-Key and
partner_sale_id each), to a pool of 20 customers created beforehand by staff, so each sale is
exactly one event (a sale to a new company would add `licensing.customer.created`).

Baseline (same run, same machine, same message size as the events): raw pika, one durable
quorum queue, a persistent message published with confirms at the same 20/s, consumed with
manual acks (`bench.common.RawPika`): publish → delivered to the consumer. The system ÷ raw
p50 ratio is reported for information; the target is absolute (it is a latency budget).

Processes (Procfile): identity (the staff sign-in), licensing, the gateway, licensing-relay
and `<consumer>-consumer` for each consumer of the event; on PostgreSQL by default
(`--database sqlite` possible): SQLite's relays poll every RELAY_POLL_INTERVAL (20 ms) where
PostgreSQL wakes them by NOTIFY at commit, and the consumer's and the web workers' commits
would queue for SQLite's single writer, so SQLite would measure the poll interval and the
file lock, not the design operators deploy (compose runs PostgreSQL).

Measurement: a warm-up of `warmup` s of sales at 20/s; then `runs` rounds, each a raw-pika run
and a system run of `duration` s at 20/s, the order alternating. Percentiles are over every
sale of every measured run (5 × 5 s = 500 sales by default: a p99 of one 100-sale run would be
its second-worst sale); the notes give each run's p50/p99 too.

CPU pinning (default): the client (sale threads, the observer thread) on the first CPU; every
server process and the raw-pika processes on the other(s). PostgreSQL and RabbitMQ are not
ours to pin and run where the kernel puts them.
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
    cpu_split,
    event_consumers,
    inbox_times,
    info,
    median,
    open_loop,
    outbox_events,
    percentile,
)
from ops.suite import procfile

NAME = "sale-propagation"
RATE = 20.0  # sales per second
CLIENT_THREADS = 8
P50_TARGET_MS = 30.0
P99_TARGET_MS = 200.0
APPLY_TIMEOUT = 60.0


def suite_processes(consumers: list[str]) -> list[str]:
    processes = ["identity", "licensing", "gateway", "licensing-relay"]
    entries = procfile()
    for consumer in consumers:
        if f"{consumer}-consumer" not in entries:
            raise RuntimeError(f"{consumer} consumes {SALE_EVENT} but the Procfile has no {consumer}-consumer")
        processes.append(f"{consumer}-consumer")
    return processes


def measure(options: Options, log=print) -> dict:
    consumers = event_consumers(SALE_EVENT)
    if not consumers:
        raise RuntimeError(f"nobody consumes {SALE_EVENT} (shared/events.yaml)")
    split = cpu_split() if options.pin else None
    client_cpus, server_cpus = split if split else (None, None)
    components = ["identity", "licensing", "gateway", *[c for c in consumers if c not in ("identity", "licensing")]]
    with BenchSuite(components, options, processes=suite_processes(consumers), default_database="postgres") as bench:
        channel = PartnerChannel(bench)
        tag = secrets.token_hex(3)
        sales: dict[str, list] = {}  # run name -> [Sent]

        def system(name: str, seconds: float) -> list:
            sent = open_loop(
                channel.sales_url,
                lambda i: channel.request(f"{tag}-{name}-{i}", i),
                rate=RATE,
                duration=seconds,
                workers=CLIENT_THREADS,
                cpus=client_cpus,
            )
            failed = [s for s in sent if s.status != 201]
            if failed:
                raise RuntimeError(
                    f"{len(failed)} of {len(sent)} sales not accepted, e.g. {failed[0].status} {failed[0].answer}"
                )
            sales[name] = sent
            total = sum(len(v) for v in sales.values())
            if not observer.wait_for(total, APPLY_TIMEOUT, bench.check_alive):
                raise RuntimeError(f"only {observer.count()} of {total} sales applied after {APPLY_TIMEOUT:.0f} s")
            return sent

        urls = {consumer: bench.database_url(consumer) for consumer in consumers}
        with AppliedObserver(urls, SALE_EVENT, cpus=client_cpus) as observer:
            system("warmup", options.warmup)
            sizes = [e["size"] for e in outbox_events(bench.database_url("licensing")).values()]
            size = int(median(sizes))
            raw_runs: list[list[float]] = []
            with RawPika(bench.amqp_url, bench.namespace, size, cpus=server_cpus) as raw:
                raw.latency(RATE, min(options.warmup, 2.0))
                for round_number in range(options.runs):
                    order = ("raw", "system") if round_number % 2 == 0 else ("system", "raw")
                    for which in order:
                        if which == "raw":
                            raw_runs.append(raw.latency(RATE, options.duration))
                            if options.verbose:
                                r = raw_runs[-1]
                                log(f"  raw pika   p50 {percentile(r, 0.5):6.2f} ms  p99 {percentile(r, 0.99):6.2f} ms")
                        else:
                            system(f"r{round_number}", options.duration)
            time.sleep(0.2)  # the last notifications
            applied = {name: dict(seen) for name, seen in observer.applied.items()}
        events = outbox_events(bench.database_url("licensing"))
        inboxes = {c: inbox_times(bench.database_url(c), c) for c in consumers}

    event_of = {e["installation_number"]: event_id for event_id, e in events.items()}
    per_run: dict[str, dict] = {}
    every: dict[str, list[float]] = {
        k: [] for k in ("accepted", "sent", "request", "late", "relay", "relay_after_201", "broker", "apply")
    }
    for name, sent in sales.items():
        if name == "warmup":
            continue
        run_latency = []
        for sale in sent:
            event_id = event_of.get(sale.answer["installation_number"])
            if event_id is None:
                raise RuntimeError(f"no {SALE_EVENT} in the outbox for {sale.answer['installation_number']}")
            done = max(applied[c][event_id] for c in consumers)
            began = min(inboxes[c][event_id] for c in consumers)
            event = events[event_id]
            run_latency.append((done - sale.answered) * 1000)
            every["sent"].append((done - sale.sent) * 1000)
            every["request"].append((sale.answered - sale.sent) * 1000)
            every["late"].append((sale.sent - sale.due) * 1000)
            every["relay"].append((event["published"] - event["created"]) * 1000)
            every["relay_after_201"].append((event["published"] - sale.answered) * 1000)
            every["broker"].append((began - event["published"]) * 1000)
            every["apply"].append((done - began) * 1000)
        every["accepted"] += run_latency
        per_run[name] = {"p50_ms": percentile(run_latency, 0.5), "p99_ms": percentile(run_latency, 0.99)}
    raw_all = [x for r in raw_runs for x in r]
    p50, p99 = percentile(every["accepted"], 0.5), percentile(every["accepted"], 0.99)
    raw_p50 = percentile(raw_all, 0.5)
    return {
        "pinned": bool(split),
        "database": bench.database,
        "consumers": consumers,
        "rate": RATE,
        "sales": len(every["accepted"]),
        "message_size": size,
        "p50_ms": p50,
        "p99_ms": p99,
        "p50_from_sent_ms": percentile(every["sent"], 0.5),
        "p99_from_sent_ms": percentile(every["sent"], 0.99),
        "raw_p50_ms": raw_p50,
        "raw_p99_ms": percentile(raw_all, 0.99),
        "ratio_p50": p50 / raw_p50 if raw_p50 else float("nan"),
        "stages_p50_ms": {k: percentile(v, 0.5) for k, v in every.items()},
        "stages_p99_ms": {k: percentile(v, 0.99) for k, v in every.items()},
        "runs": per_run,
        "raw_runs": [{"p50_ms": percentile(r, 0.5), "p99_ms": percentile(r, 0.99)} for r in raw_runs],
    }


def run(options: Options, log=print) -> Result:
    f = measure(options, log)
    p50s, p99s = f["stages_p50_ms"], f["stages_p99_ms"]
    return Result(
        NAME,
        [
            Metric(
                "p50 sale accepted → applied downstream",
                f["p50_ms"],
                " ms",
                f"<= {P50_TARGET_MS:g} ms",
                f["p50_ms"] <= P50_TARGET_MS,
            ),
            Metric(
                "p99 sale accepted → applied downstream",
                f["p99_ms"],
                " ms",
                f"<= {P99_TARGET_MS:g} ms",
                f["p99_ms"] <= P99_TARGET_MS,
            ),
            info("raw pika publish → consume p50", f["raw_p50_ms"], " ms"),
            info("system p50 ÷ raw pika p50", f["ratio_p50"], ""),
        ],
        notes=[
            f"{f['sales']} sales at {f['rate']:g}/s (open loop) through the gateway, {f['database']}, "
            f"{'pinned (client | servers)' if f['pinned'] else 'not pinned'}, consumers: {', '.join(f['consumers'])}; "
            f"event {f['message_size']} bytes",
            f"accepted → applied p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms; from the request sent: "
            f"p50 {f['p50_from_sent_ms']:.1f} ms, p99 {f['p99_from_sent_ms']:.1f} ms",
            f"raw pika (same size, same rate): p50 {f['raw_p50_ms']:.2f} ms, p99 {f['raw_p99_ms']:.2f} ms",
            "stages p50 / p99 (ms): "
            + ", ".join(
                f"{label} {p50s[key]:.1f} / {p99s[key]:.1f}"
                for key, label in (
                    ("request", "POST answered"),
                    ("late", "sent after due"),
                    ("relay", "outbox row → broker confirmed"),
                    ("relay_after_201", "201 → broker confirmed"),
                    ("broker", "confirmed → consumer began"),
                    ("apply", "consumer began → committed"),
                )
            ),
            "per run p50/p99 (ms): " + ", ".join(f"{r['p50_ms']:.1f}/{r['p99_ms']:.1f}" for r in f["runs"].values()),
        ],
        details=f,
    )
