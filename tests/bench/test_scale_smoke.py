"""The scale benchmark still runs (bench/scale.py): its generated data is what it claims to be,
the forum half measures end to end on two tiny databases and the license list half on a small
customer population (needs PostgreSQL and RabbitMQ, like the other smoke tests; no assertion
on speed)."""

from __future__ import annotations

import math

import psycopg
from licensing import installation_numbers

from bench import scale
from bench.common import Options


def test_the_vocabulary_and_the_query_mix_are_the_same_every_time():
    first, second = scale.vocabulary(), scale.vocabulary()
    assert first.words == second.words and len(set(first.words)) == len(first.words)
    assert first.rank("a") == 1 and first.rank("faktura") < 100 < first.rank("intrastat")
    mix = scale.queries(3)
    assert mix == scale.queries(3) and len(mix) == 3 * len(scale.CLASSES)
    assert {kind for kind, _ in mix} == set(scale.CLASSES)
    for kind, q in mix:
        if kind == "no diacritics":
            assert q.isascii() and any(scale.fold(w) == q for w in scale.DOMAIN_WORDS), q
        if kind == "prefix":
            assert any(w.startswith(q) and w != q for w in scale.DOMAIN_WORDS), q
        if kind == "two words":
            assert len(q.split()) == 2


def test_the_plan_has_threads_in_time_order():
    layout = scale.plan(2_000)
    posts, topics = layout.posts, layout.topics
    assert len(posts) == 2_000 and len(topics) == 2_000 // scale.POSTS_PER_TOPIC
    assert [p[0] for p in posts] == list(range(1, 2_001))
    assert all(a[5] <= b[5] for a, b in zip(posts, posts[1:], strict=False))  # ids follow time
    firsts = {}
    for post_id, topic_id, _author, _staff, first, _at, _hidden in posts:
        if first:
            assert topic_id not in firsts
            firsts[topic_id] = post_id
        else:
            assert firsts[topic_id] < post_id  # a reply comes after its topic's first post
    visible_replies = {t[0]: 0 for t in topics}
    for _id, topic_id, _author, _staff, first, _at, hidden in posts:
        visible_replies[topic_id] += not first and not hidden
    assert all(t[6] == visible_replies[t[0]] for t in topics)


def test_the_forum_half_measures_both_databases_and_drops_them():
    options = Options(runs=1, pin=False)
    result = scale.run(options, log=lambda line: None, parts=("forum",), posts=3_000, baseline_posts=1_000, per_class=2)
    figures = result.details["forum"]
    assert result.metrics[0].name == "forum search p95, 3,000 posts" and result.metrics[0].target == "<= 50 ms"
    for label in ("scale", "baseline"):
        every = figures["summary"][label]["all"]
        assert every["n"] == 2 * len(scale.CLASSES)
        assert every["p50"] > 0 and math.isfinite(every["p95"])
        assert figures[f"{label}_load"]["seconds"]["total"] > 0
    # The common words are found even on 3,000 posts (rare ones and pairs may find nothing).
    assert all(figures["matches"]["scale"][q] > 0 for q in figures["classes"]["common"])
    assert set(figures["slowest"]) == set(scale.CLASSES)
    with psycopg.connect(scale.admin_url()) as connection:
        left = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE 'cc_bench_scale_%'").fetchall()
    assert left == []


def test_the_license_plan_is_the_same_every_time_and_has_the_featured_customers():
    sizes = scale.LicenseSizes(licenses=300, baseline_licenses=5, customers=50)
    first, second = scale.license_plan(sizes), scale.license_plan(sizes)
    assert first.licenses == second.licenses and first.customers == second.customers
    assert [row[0] for row in first.licenses] == list(range(1, len(first.licenses) + 1))
    assert all(a[11] <= b[11] for a, b in zip(first.licenses, first.licenses[1:], strict=False))  # ids follow sales
    numbers = [row[1] for row in first.licenses]
    assert len(set(numbers)) == len(numbers)
    assert all(installation_numbers.normalise(n) == n for n in numbers[:100])
    featured = sizes.featured()
    for label, registered in (("scale", 300), ("baseline", 5)):
        mine = [row for row in first.licenses if row[2] == featured[label]]
        assert sum(row[10] == "registered" for row in mine) == registered
        assert {row[10] for row in mine} == {"registered", "unregistered", "revoked"}
    assert len(first.customers) == 52 and {c[1] for c in first.customers} >= {
        scale.customer_number(i) for i in featured.values()
    }
    readers = [m for m in first.memberships if m[0] == scale.READER]
    assert sorted(m[1] for m in readers) == sorted(scale.customer_number(i) for i in featured.values())


def test_the_license_half_walks_every_page_measures_both_customers_and_drops_the_database():
    options = Options(runs=1, pin=False)
    result = scale.run(
        options,
        log=lambda line: None,
        parts=("licenses",),
        license_options={"licenses": 300, "baseline_licenses": 5, "customers": 200, "sessions": 2},
    )
    figures = result.details["licenses"]
    assert result.metrics[0].name == "license list p95, 300 licenses" and result.metrics[0].target == "<= 50 ms"
    scale_, baseline = figures["summary"]["scale"], figures["summary"]["baseline"]
    # Per session: two first pages, two pages by next in each sort (300 = 3 pages), two last pages.
    assert (scale_["first page"]["n"], scale_["next page"]["n"], scale_["deep page"]["n"]) == (4, 8, 4)
    assert scale_["csv"]["n"] == 2 and scale_["all"]["p50"] > 0 and math.isfinite(scale_["all"]["p95"])
    # The baseline's five licenses are one page: no next, no deep page.
    assert (baseline["first page"]["n"], baseline["next page"]["n"], baseline["deep page"]["n"]) == (4, 0, 0)
    assert [len(figures["walk_ms"]["scale"][sort]) for sort in scale.SORTS] == [3, 3]
    assert figures["load"]["seconds"]["total"] > 0
    with psycopg.connect(scale.admin_url()) as connection:
        left = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE 'cc_bench_scale_%'").fetchall()
    assert left == []
