"""Full-text search over topic titles and post bodies, ranked, with accents folded.

Two engines behind one pair of functions: PostgreSQL full-text search (the `forum_search`
configuration: unaccent, then simple) and SQLite FTS5 (unicode61 with diacritics removed)
for the embedded default. Both index a post's body, and the opening post also its topic's
title with more weight, so a title match ranks above a passing mention in a reply.

Every word of the query must match, each as a prefix: Czech inflects, and "faktur" then
finds "faktura", "faktury" and "fakturu". Hidden posts and hidden topics are not found.

On PostgreSQL only the newest CANDIDATES matches are ranked, so that a word in a tenth of a
million posts answers as fast as a rare one (bench/README.md, "scale"). A word list kept
beside the vectors (`post_search_terms`: each word and how many posts it is in) turns each
prefix into the words it begins, which the GIN index intersects far faster, and tells how
many posts a query matches before any is read: how far back among the newest posts its
newest CANDIDATES matches should lie, and which way of finding them is cheapest.
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
COMPLETIONS = 64  # PostgreSQL: a prefix is searched as the words it begins, up to this many
WINDOW_SPREAD = 2  # PostgreSQL: the newest posts searched first should hold this many times CANDIDATES
WINDOW_MOST = 0.3  # ... and be at most this share of the posts, else all matches are read
WALK_SHARE = 0.02  # PostgreSQL: a query in this share of the posts or more walks the newest ones
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
        # The word list counts the posts each word is in: the words the post gains count one
        # more, the words an edit takes away one less. In word order, so that two posts written
        # at once wait for each other rather than deadlock on the words they share.
        session.execute(
            text(
                """
                WITH changed AS (
                    UPDATE posts p SET search_vector =
                        setweight(to_tsvector('forum_search', :title), 'A') ||
                        setweight(to_tsvector('forum_search', :body), 'B')
                    FROM posts was WHERE p.id = :id AND was.id = :id
                    RETURNING was.search_vector AS before, p.search_vector AS after
                ), counted AS (
                    SELECT term, sum(change) AS change FROM (
                        SELECT unnest(tsvector_to_array(after)) AS term, 1 AS change FROM changed
                        UNION ALL
                        SELECT unnest(tsvector_to_array(before)), -1 FROM changed WHERE before IS NOT NULL
                    ) changes
                    GROUP BY term HAVING sum(change) <> 0
                )
                INSERT INTO post_search_terms (term, posts)
                SELECT term, change FROM counted ORDER BY term
                ON CONFLICT (term) DO UPDATE SET posts = post_search_terms.posts + excluded.posts
                """
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


@dataclass(frozen=True)
class _Query:
    """A search as PostgreSQL runs it, from the word list."""

    prefixes: str  # the tsquery as typed: every word, each a prefix ('faktur':* & 'dph':*)
    named: str  # the same matches, each prefix as the words it begins (('faktura' | 'faktury') & …)
    share: float  # of all posts, how many should match (were the words independent of each other)
    newest: int  # the newest post's id


def _quoted(lexeme: str) -> str:
    """A lexeme as a tsquery operand: a word of a post may hold quotes and backslashes."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _query(session: Session, words: list[str]) -> _Query | None:
    """The query's words as the index has them (None if none is), and the forum's words each
    begins, from the word list (`post_search_terms`, kept by index_post)."""
    rows = session.execute(
        text(
            """
            SELECT w.n, l.lexeme, t.term, t.posts, (SELECT max(id) FROM posts) AS newest
            FROM unnest(CAST(:words AS text[])) WITH ORDINALITY AS w (word, n)
            CROSS JOIN LATERAL unnest(to_tsvector('forum_search', w.word)) AS l
            LEFT JOIN LATERAL (
                -- In the "C" collation the words beginning with a lexeme sort between it and
                -- it followed by the highest code point: a range of the primary key.
                SELECT term, posts FROM post_search_terms
                WHERE term >= l.lexeme AND term < l.lexeme || chr(1114111)
                ORDER BY term LIMIT :most
            ) t ON true
            ORDER BY w.n, l.lexeme, t.posts DESC
            """
        ),
        {"words": words, "most": COMPLETIONS + 1},
    ).all()
    if not rows:
        return None  # nothing the text search indexes (only underscores, say)
    newest = max(rows[0].newest or 0, 1)
    completions: dict[tuple[int, str], list[tuple[str, int]]] = {}
    for row in rows:
        found = completions.setdefault((row.n, row.lexeme), [])
        if row.term is not None:
            found.append((row.term, row.posts))
    prefixes, named, share = [], [], 1.0
    for (_, lexeme), found in completions.items():
        prefix = f"{_quoted(lexeme)}:*"
        prefixes.append(prefix)
        if not found:
            # The index is asked all the same (it costs nothing): the list only ever speeds
            # search up, it never hides a post.
            named.append(prefix)
            share = 0.0
        elif len(found) > COMPLETIONS:
            named.append(prefix)  # a very short prefix: common anyway
        else:
            named.append("(" + " | ".join(_quoted(term) for term, _ in found) + ")")
            share *= min(1.0, sum(max(posts, 0) for _, posts in found) / newest)
    return _Query(" & ".join(prefixes), " & ".join(named), share, newest)


def _search_postgresql(session: Session, words: list[str], limit: int, include_hidden: bool) -> list[Hit]:
    # The plan depends on the query's values, so every plan is custom (psycopg prepares
    # repeated statements); JIT costs more than this query; with the default 4 MB a bitmap
    # of many posts goes lossy and every row of its pages is checked again; no part of a
    # search wants a whole table read (in a small forum the planner would rather read all
    # of it than walk the newest posts).
    session.execute(
        text(
            "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), set_config('jit', 'off', true), "
            "set_config('work_mem', '64MB', true), set_config('enable_seqscan', 'off', true)"
        )
    )
    query = _query(session, words)
    if query is None:
        return []
    # Only the newest CANDIDATES matches are ranked, and the word list tells where they are:
    # among the newest posts, in a window expected to hold WINDOW_SPREAD times as many. It
    # tells the cheapest way to them too, which the planner, guessing from its statistics,
    # often gets wrong: a common query walks the window (WALK), another one takes the GIN
    # index's matches in it (MATCHES), or all of them when the window would be most of the forum.
    window = WINDOW_SPREAD * CANDIDATES / max(query.share, 1e-9)
    after = query.newest - int(window)
    if query.share >= WALK_SHARE and window < query.newest:
        found = _ranked(session, _WALK, query.prefixes, query, limit, include_hidden, after)
    elif window <= WINDOW_MOST * query.newest:
        found = _ranked(session, _MATCHES, query.named, query, limit, include_hidden, after)
    else:
        found = _ranked(session, _MATCHES, query.named, query, limit, include_hidden, None)
    if found is None:
        # The window held fewer than CANDIDATES matches (a word of the past): the planner's way.
        found = _ranked(session, _NEWEST, query.named, query, limit, include_hidden, None)
    return [Hit(topic_id, post_id, title, excerpt(body_html, words)) for topic_id, post_id, title, body_html in found]


# Three ways to the newest CANDIDATES matches, as the `candidates` of _ranked's statement.
# WALK, for a common query: the posts of the window backwards by id, each one's vector
# tested, until CANDIDATES match — a few thousand rows, the newest, which every common query
# reads. The function form of @@ keeps the planner off the GIN index, whose bitmap of a
# common word's hundred thousand posts it underestimates.
_WALK = """
    candidates AS MATERIALIZED (
        SELECT p.id FROM posts p
        WHERE p.id > :after AND ts_match_vq(p.search_vector, CAST(:matching AS tsquery)) {visible}
        ORDER BY p.id DESC LIMIT :candidates
    )"""
# MATCHES, for a middle or rare query: all of them from the GIN index (in the window: ANDed
# with the primary key's range, so that only the window's matches are read from the table —
# reading all of them, scattered over eight years of posts, is what costs), then the newest.
# Materialised so that the planner cannot walk the posts by id instead.
_MATCHES = """
    matches AS MATERIALIZED (
        SELECT p.id FROM posts p
        WHERE p.search_vector @@ CAST(:matching AS tsquery) {window} {visible}
    ), candidates AS MATERIALIZED (
        SELECT id FROM matches ORDER BY id DESC LIMIT :candidates
    )"""
# NEWEST: whichever of the two the planner prefers.
_NEWEST = """
    candidates AS MATERIALIZED (
        SELECT p.id FROM posts p
        WHERE p.search_vector @@ CAST(:matching AS tsquery) {window} {visible}
        ORDER BY p.id DESC LIMIT :candidates
    )"""


def _ranked(
    session: Session,
    candidates: str,
    matching: str,
    query: _Query,
    limit: int,
    include_hidden: bool,
    after: int | None,
) -> list[tuple[int, int, str, str]] | None:
    """The best `limit` of the newest CANDIDATES posts `matching` (one of `query`'s two
    tsqueries), found the `candidates` way, as (topic id, post id, title, body). With `after`,
    of the matches with a greater id only, and None when those are fewer than CANDIDATES
    (the newest CANDIDATES of all may then be older). Ranked with the prefixes: the same
    rank as with the words they begin, four times faster."""
    candidates = candidates.format(
        window="" if after is None else "AND p.id > :after",
        visible="" if include_hidden else "AND NOT p.hidden",
    )
    visible_topics = "" if include_hidden else "WHERE NOT t.hidden"
    rows = session.execute(
        text(
            f"""
            WITH {candidates}, best AS (
                SELECT p.id, p.topic_id, ts_rank_cd(p.search_vector, CAST(:ranking AS tsquery)) AS rank
                FROM candidates c JOIN posts p ON p.id = c.id
                ORDER BY rank DESC, p.id DESC LIMIT :some
            )
            SELECT best.topic_id, best.id, t.title, p.body_html, (SELECT count(*) FROM candidates) AS considered
            FROM best JOIN topics t ON t.id = best.topic_id JOIN posts p ON p.id = best.id
            {visible_topics}
            ORDER BY best.rank DESC, best.id DESC
            LIMIT :limit
            """
        ),
        {
            "matching": matching,
            "ranking": query.prefixes,
            "after": after,
            "candidates": CANDIDATES,
            "some": limit * 3,
            "limit": limit,
        },
    ).all()
    if after is not None and (not rows or rows[0].considered < CANDIDATES):
        return None
    return [tuple(row[:4]) for row in rows]


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
    if word.isascii():
        return word.lower()
    return "".join(c for c in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(c))


def excerpt(body_html: str, words: list[str], width: int = EXCERPT_WORDS) -> str:
    """About `width` words of the post around its first match, matches marked.

    Done here rather than by the engines (ts_headline, snippet) so that both give the same
    excerpt, of the text as readers see it rather than of its Markdown.
    """
    tokens = markdown.plain_text(body_html).split()
    folded = tuple(fold(term) for term in words)

    def matches(token: str) -> bool:
        return any(part.startswith(folded) for part in _WORD.findall(fold(token)))

    first = next((i for i, token in enumerate(tokens) if matches(token)), 0)
    start = max(0, first - width // 3)
    window = tokens[start : start + width]
    marked = [f"{MARK_START}{token}{MARK_END}" if matches(token) else token for token in window]
    return ("… " if start else "") + " ".join(marked) + (" …" if start + width < len(tokens) else "")
