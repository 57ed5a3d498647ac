"""The scale benchmark still runs (bench/scale.py): its generated data is what it claims to be,
and the forum half measures end to end on two tiny databases (needs PostgreSQL and RabbitMQ,
like the other smoke tests; no assertion on speed)."""

from __future__ import annotations

import math

import psycopg

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
    result = scale.run(options, log=lambda line: None, posts=3_000, baseline_posts=1_000, per_class=2)
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
