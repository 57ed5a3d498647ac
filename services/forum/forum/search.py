"""Full-text search over topic titles and post bodies, ranked, with accents folded.

Two engines behind one pair of functions: PostgreSQL full-text search (the `forum_search`
configuration: unaccent, then simple) and SQLite FTS5 (unicode61 with diacritics removed)
for the embedded default. Both index a post's body, and the opening post also its topic's
title with more weight, so a title match ranks above a passing mention in a reply.

Every word of the query must match, each as a prefix: Czech inflects, and "faktur" then
finds "faktura", "faktury" and "fakturu". Hidden posts and hidden topics are not found.
On PostgreSQL only the newest CANDIDATES matches are ranked, so a word found in a tenth of a
million posts answers as fast as a rare one (bench/README.md, "scale").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from forum import markdown

MAX_TERMS = 8
EXCERPT_WORDS = 30
CANDIDATES = 500  # PostgreSQL: how many of the newest matches are ranked (see _search_postgresql)
MARK_START, MARK_END = "\x02", "\x03"  # around matched words in an excerpt; never in text
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Hit:
    topic_id: int
    post_id: int
    title: str
    excerpt: str  # plain text; matched words between MARK_START and MARK_END


def terms(query: str) -> list[str]:
    """The words of a query, at most MAX_TERMS, lower-cased; punctuation never reaches SQL."""
    return [word.lower() for word in _WORD.findall(query)][:MAX_TERMS]


def index_post(session: Session, post_id: int, title: str | None, body: str) -> None:
    """(Re)index one post; `title` only for a topic's opening post."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "UPDATE posts SET search_vector = "
                "setweight(to_tsvector('forum_search', :title), 'A') || "
                "setweight(to_tsvector('forum_search', :body), 'B') WHERE id = :id"
            ),
            {"id": post_id, "title": title or "", "body": body},
        )
    else:
        session.execute(text("DELETE FROM post_search WHERE rowid = :id"), {"id": post_id})
        session.execute(
            text("INSERT INTO post_search (rowid, title, body) VALUES (:id, :title, :body)"),
            {"id": post_id, "title": title or "", "body": body},
        )


def search(session: Session, query: str, limit: int = 20, include_hidden: bool = False) -> list[Hit]:
    words = terms(query)
    if not words:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return _search_postgresql(session, words, limit, include_hidden)
    return _search_sqlite(session, words, limit, include_hidden)


def _visible(include_hidden: bool) -> str:
    return "" if include_hidden else "AND NOT p.hidden AND NOT t.hidden"


def _search_postgresql(session: Session, words: list[str], limit: int, include_hidden: bool) -> list[Hit]:
    # The words are \w+ only, so quoting them for to_tsquery cannot break out of its syntax.
    tsquery = " & ".join(f"'{word}':*" for word in words)
    # Ranking reads every candidate's tsvector: over a million posts a common word matches a
    # hundred thousand, so rank the newest CANDIDATES matches only. The planner walks the
    # primary key backwards for a common word (stopping after CANDIDATES) and uses the GIN
    # index for a rare one; to choose, it must see the query's value, so every plan is custom
    # (psycopg prepares repeated statements) and JIT, which costs more than this query, is off.
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    session.execute(text("SET LOCAL jit = off"))
    # Two prefixes together gather many postings: with the default 4 MB the bitmap goes lossy
    # and every row of its pages is checked again.
    session.execute(text("SET LOCAL work_mem = '64MB'"))
    visible_posts = "" if include_hidden else "AND NOT p.hidden"
    visible_topics = "" if include_hidden else "WHERE NOT t.hidden"
    rows = session.execute(
        text(
            f"""
            WITH candidates AS MATERIALIZED (
                SELECT p.id, p.topic_id, p.search_vector FROM posts p
                WHERE p.search_vector @@ to_tsquery('forum_search', :tsquery) {visible_posts}
                ORDER BY p.id DESC LIMIT :candidates
            ), best AS (
                SELECT id, topic_id, ts_rank_cd(search_vector, to_tsquery('forum_search', :tsquery)) AS rank
                FROM candidates ORDER BY rank DESC, id DESC LIMIT :some
            )
            SELECT best.topic_id, best.id, t.title, p.body_html
            FROM best JOIN topics t ON t.id = best.topic_id JOIN posts p ON p.id = best.id
            {visible_topics}
            ORDER BY best.rank DESC, best.id DESC
            LIMIT :limit
            """
        ),
        {"tsquery": tsquery, "candidates": CANDIDATES, "some": limit * 3, "limit": limit},
    )
    return [Hit(topic_id, post_id, title, excerpt(body_html, words)) for topic_id, post_id, title, body_html in rows]


def _search_sqlite(session: Session, words: list[str], limit: int, include_hidden: bool) -> list[Hit]:
    match = " ".join(f'"{word}"*' for word in words)
    rows = session.execute(
        text(
            f"""
            SELECT p.topic_id, p.id, t.title, p.body_html
            FROM post_search
            JOIN posts p ON p.id = post_search.rowid
            JOIN topics t ON t.id = p.topic_id
            WHERE post_search MATCH :match {_visible(include_hidden)}
            ORDER BY bm25(post_search, 4.0, 1.0), p.id DESC
            LIMIT :limit
            """
        ),
        {"match": match, "limit": limit},
    )
    return [Hit(topic_id, post_id, title, excerpt(body_html, words)) for topic_id, post_id, title, body_html in rows]


def fold(word: str) -> str:
    """Lower case without accents, as both engines compare words: "Účetní" -> "ucetni"."""
    return "".join(c for c in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(c))


def excerpt(body_html: str, words: list[str], width: int = EXCERPT_WORDS) -> str:
    """About `width` words of the post around its first match, matches marked.

    Done here rather than by the engines (ts_headline, snippet) so that both give the same
    excerpt, of the text as readers see it rather than of its Markdown.
    """
    tokens = markdown.plain_text(body_html).split()
    folded = [fold(term) for term in words]

    def matches(token: str) -> bool:
        return any(fold(part).startswith(term) for part in _WORD.findall(token) for term in folded)

    first = next((i for i, token in enumerate(tokens) if matches(token)), 0)
    start = max(0, first - width // 3)
    window = tokens[start : start + width]
    marked = [f"{MARK_START}{token}{MARK_END}" if matches(token) else token for token in window]
    return ("… " if start else "") + " ".join(marked) + (" …" if start + width < len(tokens) else "")
