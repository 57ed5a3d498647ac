"""scale: the forum's search over 1,000,000 posts on PostgreSQL (the license list of a customer
with 10,000 licenses is the second half, still to come).

Target (docs/quality.md): p95 <= 50 ms each. The target is absolute; the same queries on
10,000 posts, measured in the same run, are printed beside it for comparison.

`python -m bench.scale [forum] [--keep] [--posts N] [--per-class N] [--explain] [common options]`
(or `python -m bench scale` where the runner lists it). Parts: `forum` (the default: every part
built so far; `licenses` will join it).

**Forum search.** What users get: `GET /api/v1/forum/search?q=…` on the forum service's own
gunicorn port (the Procfile's `forum` entry, `BenchSuite`), with the `X-Identity` token the
gateway would send for a signed-in customer (`shared.auth.issue`, not staff: hidden posts and
topics are filtered as for every customer), limit 20 (the API's default).

- **Data**: a PostgreSQL database migrated with forum's own migrations
  (`shared.migrations.upgrade`), then 1,000,000 posts in 50,000 topics (20 per topic on
  average, a few long threads and many short ones) in six categories, by 20,000 authors (1 %
  staff), over eight years; 0.5 % of posts and 0.2 % of topics hidden. Text: a vocabulary of
  ~80 Czech function words, ~300 Czech accounting/software words with their inflected forms
  ("faktura", "faktury", "fakturu", …) and 30,000 synthetic Czech-looking words, ranked and
  drawn with Zipf's law (s = 1): function words in most posts, the 19 common domain words in
  7–40 % of posts, the tail in a few hundred. Bodies 20–120 words in sentences, `body_html` the
  body in `<p>`; titles 3–8 words, indexed with weight A on the topic's first post only, as
  `forum.search.index_post` does.
- **Loading**: two generator processes COPY into an unlogged staging table; two
  `INSERT … SELECT` (one per half, in parallel) fill `posts` with the search vector computed
  by PostgreSQL exactly as `index_post` does; the GIN index, the other secondary indexes and
  the foreign keys of `posts` are dropped first and recreated afterwards (their definitions
  read from the catalogue, so whatever the migrations made comes back); then `VACUUM ANALYZE`.
  `--keep` keeps the databases (`bench_forum_scale`, `bench_forum_scale_10000`) for the next
  run, which then skips the load; a database whose generator, size or migration head differs
  is rebuilt. Without `--keep` they are dropped at the end.
- **Queries**: five classes of `--per-class` queries each (default 40, i.e. 200): one common
  word, one rare word, two words, a word typed without its diacritics ("ucetnictvi"), the
  prefix of an inflected word ("faktur"). Warm-up: every distinct query once on both
  databases. Then `--runs` rounds of the whole mix in a shuffled order, each query on the
  10,000-post database and on the 1,000,000-post one in turn, one keep-alive connection, one
  request at a time (latency, not throughput). p50/p95/p99 per class and overall; the target
  applies to the overall p95 on 1,000,000 posts, the per-class figures are information.
- **Where the time goes** (`--explain`): `forum.search.search` called in-process for the
  slowest query of each class, its SQL captured as it goes out and run again under `EXPLAIN
  (ANALYZE, BUFFERS)`: always the service's current SQL, never a copy.

Pinned like the other benchmarks: the client on CPU 0, gunicorn on the other(s); PostgreSQL is
the machine's own server and runs where the kernel puts it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import http.client
import itertools
import json
import os
import random
import sys
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

from bench.common import (
    BenchSuite,
    Metric,
    Options,
    Result,
    affinity,
    cpu_split,
    info,
    percentile,
)

NAME = "scale"
PARTS = ("forum",)  # "licenses" (a customer with 10,000 licenses) comes next
TARGET_MS = 50.0
POSTS = 1_000_000
BASELINE_POSTS = 10_000
POSTS_PER_TOPIC = 20
PER_CLASS = 40
RUNS = 3  # rounds of the mix for `python -m bench.scale` (the runner's --runs applies under `python -m bench`)
SEED = 20261128
# Bump when the generated data changes: a kept database made by another version is rebuilt.
GENERATOR = 1
CLASSES = ("common", "rare", "two words", "no diacritics", "prefix")

# --- the vocabulary ------------------------------------------------------------------------------
# Function words: the head of Zipf's distribution, in nearly every post ("simple" keeps them).
FUNCTION_WORDS = """
a se na je v to že s z do k o jak ale pro po jsem mi mám už tak by když nebo při jen co ve si i
od ze aby jsou není bylo byl tom tam ten ta který která které můžete prosím dobrý den zdravím
také ještě však protože pak kde proč všechno nic něco bych bude máme mít musí lze podle před
za u bez jaký stejně asi opravdu hned znovu vždy nikdy
""".split()

# The words the forum is about, each with some of its inflected forms. The first ones of
# COMMON are placed among the function words (in 7-40 % of posts); the rest anywhere from
# fairly common to rare.
COMMON = """
program chyba faktura verze účetnictví DPH daň sklad tisk export databáze aktualizace instalace
licence objednávka mzdy doklad přiznání závěrka
""".split()
DOMAIN_WORDS = """
faktura faktury fakturu faktuře fakturou fakturace fakturační fakturovat vyfakturovat
účetnictví účetní účetního účtování účet účtu účty účtů zaúčtovat zaúčtování předkontace
předkontaci závěrka závěrky závěrku uzávěrka uzávěrky roční měsíční čtvrtletní
daň daně daní daňový daňové daňového přiznání přiznáním DPH kontrolní hlášení souhrnné výkaz
výkazu výkazy rozvaha rozvahy výsledovka výsledovky
mzdy mzda mzdu mzdové mzdový mzdách zaměstnanec zaměstnance zaměstnanců pojištění sociální
zdravotní odvody odvodů srážky nemocenská dovolená dovolené docházka
sklad skladu skladem sklady skladová skladové zásoby zásob inventura inventury příjemka
příjemky výdejka výdejky převodka zboží položka položky položek ceník ceníku ceny cena sleva
slevy
objednávka objednávky objednávku objednávek nabídka nabídky poptávka dodací list listy
dodavatel dodavatele odběratel odběratele adresář adresáře firma firmy firmu IČO DIČ
export exportu exportovat import importu importovat XML PDF ISDOC CSV Excel tisk tisku
tisknout tiskárna tiskárny sestava sestavy sestavu formulář formuláře
instalace instalaci nainstalovat odinstalovat aktualizace aktualizaci aktualizovat verze verzi
nové nová nový licence licenci licencí registrace aktivace klíč instalační číslo čísla
databáze databázi záloha zálohu zálohování obnova obnovení server síť síti síťová počítač
počítači stanice Windows SQL chyba chyby chybu chybová hláška hlášku problém problému
nefunguje nejde spadne zamrzne pomalé rychlost
banka banky bankovní výpis výpisy výpisu platba platby platbu úhrada úhrady příkaz pokladna
pokladní doklad doklady dokladu dokladů kurz kurzový rozdíl měna EUR CZK saldo pohledávky
závazky upomínka upomínky penále
majetek majetku odpisy odpis leasing evidence kniha knihy deník hlavní středisko střediska
zakázka zakázky projekt činnost
uživatel uživatele uživatelů heslo hesla přihlášení práva nastavení nastavit agenda agendy modul
modulu program programu programem okno tlačítko menu seznam seznamu filtr hledání
datum období rok roku měsíc leden prosinec lednu prosinci termín lhůta
děkuji pomoc podpora podpory návod postup řešení vyřešeno dotaz otázka odpověď funguje zkusil
zkusila zkoušel poradit poradí potřebuji nevím stejný jiný
EET eshop intrastat OSS přenesená povinnost dobropis dobropisy zálohová proforma storno
stornovat opravný
""".split()

_ONSETS = "b c č d h ch j k l m n p pr r ř s st š t tr v z ž kr pl zn br dr sl".split()
_VOWELS = "a á e é ě i í o u ů y ý a e o i".split()
_CODAS = ["", "", "", "", "", "", "n", "k", "l", "s", "t", "st", "m", "j"]
_SUFFIXES = ["", "", "", "ní", "ka", "ový", "ost", "ce", "ky", "ují", "ená"]


def fold(word: str) -> str:
    """Lower case without accents (what the `forum_search` configuration compares)."""
    return "".join(c for c in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(c))


@dataclasses.dataclass
class Vocabulary:
    words: list[str]  # by rank, most frequent first
    cum_weights: list[float]  # Zipf, s = 1
    title_words: list[str]  # without the function words
    title_cum: list[float]
    synthetic: list[str]

    def rank(self, word: str) -> int:
        return self._ranks[word]

    def __post_init__(self) -> None:
        self._ranks = {word: rank for rank, word in enumerate(self.words, 1)}


def vocabulary(seed: int = SEED, synthetic_words: int = 30_000) -> Vocabulary:
    """The ranked vocabulary, the same for every process and every run with `seed`."""
    rng = random.Random(seed)
    real = list(dict.fromkeys(FUNCTION_WORDS + DOMAIN_WORDS))
    taken = {fold(w) for w in real}
    synthetic: list[str] = []
    while len(synthetic) < synthetic_words:
        word = "".join(
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(rng.choice((2, 2, 2, 3, 3)))
        )
        word += rng.choice(_SUFFIXES)
        if len(word) >= 4 and fold(word) not in taken:
            taken.add(fold(word))
            synthetic.append(word)
    # Ranks: 12 function words; then the common domain words among the other function words
    # (ranks ~13-90); the other domain words spread over ranks 100-15,000 among the synthetic
    # ones; the remaining synthetic words make the tail.
    head = FUNCTION_WORDS[:12]
    rest_function = FUNCTION_WORDS[12:]
    common = list(COMMON)
    middle: list[str] = []
    while rest_function or common:
        for source, take in ((common, 1), (rest_function, 3)):
            middle += source[:take]
            del source[:take]
    domain_rest = [w for w in dict.fromkeys(DOMAIN_WORDS) if w not in set(COMMON) and w not in set(FUNCTION_WORDS)]
    rng.shuffle(domain_rest)
    tail = collections.deque(synthetic)
    positions = sorted(int(100 * (150 ** rng.random())) for _ in domain_rest)  # log-uniform in 100-15,000
    ranked = head + middle
    for word, position in zip(domain_rest, positions, strict=True):
        while len(ranked) < position and tail:
            ranked.append(tail.popleft())
        ranked.append(word)
    ranked += tail
    cum = list(itertools.accumulate(1.0 / r for r in range(1, len(ranked) + 1)))
    title_words = [w for w in ranked if w not in set(FUNCTION_WORDS)]
    title_cum = list(itertools.accumulate(1.0 / r for r in range(1, len(title_words) + 1)))
    return Vocabulary(ranked, cum, title_words, title_cum, synthetic)


def sentence_text(rng: random.Random, vocab: Vocabulary, count: int) -> str:
    """`count` words in sentences of 5-15 words, each capitalised and closed."""
    words = rng.choices(vocab.words, cum_weights=vocab.cum_weights, k=count)
    parts = []
    at = 0
    while at < count:
        length = rng.randint(5, 15)
        chunk = words[at : at + length]
        at += length
        first = chunk[0]
        chunk[0] = first[0].upper() + first[1:]
        parts.append(" ".join(chunk) + rng.choice(".....?!"))
    return " ".join(parts)


def title_text(rng: random.Random, vocab: Vocabulary) -> str:
    words = rng.choices(vocab.title_words, cum_weights=vocab.title_cum, k=rng.randint(3, 8))
    text = " ".join(words)
    return (text[0].upper() + text[1:])[:200]


# --- the data set --------------------------------------------------------------------------------
CATEGORIES = [
    ("Účetnictví", "Účetnictví, závěrka, doklady", "ucetnictvi", 0.30),
    ("Daně a DPH", "Přiznání, kontrolní hlášení, DPH", "ucetnictvi", 0.15),
    ("Mzdy a personalistika", "Mzdy, odvody, docházka", "mzdy", 0.15),
    ("Sklad a objednávky", "Sklad, objednávky, fakturace", "sklad", 0.15),
    ("Instalace a licence", "Instalace, aktualizace, licence, databáze", None, 0.15),
    ("Obecná diskuse", "Vše ostatní", None, 0.10),
]
END = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=8 * 365)


@dataclasses.dataclass
class Plan:
    """Who wrote what where and when, without the words (cheap; bodies come in workers)."""

    topics: list[tuple]  # (id, category_id, title, author_id, created_at, last_activity_at, replies, hidden, solution)
    posts: list[tuple]  # (id, topic_id, author_index, by_staff, is_first, created_at, hidden), by id
    authors: list[tuple]  # (user_id, name, email, company_name, staff)


def plan(posts: int, seed: int = SEED) -> Plan:
    rng = random.Random(seed)
    vocab = vocabulary(seed)
    topic_count = max(1, posts // POSTS_PER_TOPIC)
    author_count = max(50, posts // 50)
    authors = []
    for index in range(author_count):
        staff = index % 100 == 0
        user_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        surname = rng.choice(vocab.synthetic).capitalize()
        authors.append(
            (
                user_id,
                f"{rng.choice(['Jana', 'Petr', 'Eva', 'Jiří', 'Marie', 'Tomáš', 'Lenka', 'Pavel'])} {surname}",
                None,
                None if staff else f"{surname} s.r.o.",
                staff,
            )
        )
    # Authors post with Zipf's law too: a few regulars, a long tail of one-off askers.
    author_cum = list(itertools.accumulate(1.0 / r for r in range(1, author_count + 1)))
    category_cum = list(itertools.accumulate(c[3] for c in CATEGORIES))
    span = SPAN.total_seconds()
    topic_times = sorted(rng.random() * span for _ in range(topic_count))
    # Replies: each topic's popularity is log-normal; reply delays exponential (mean 2 days).
    popularity = list(itertools.accumulate(rng.lognormvariate(0, 1.2) for _ in range(topic_count)))
    events: list[tuple[float, int, bool]] = [(t, i, True) for i, t in enumerate(topic_times)]
    for topic_index in rng.choices(range(topic_count), cum_weights=popularity, k=posts - topic_count):
        delay = rng.expovariate(1 / (2 * 86400))
        events.append((topic_times[topic_index] + 1 + delay, topic_index, False))
    events.sort()
    authors_drawn = rng.choices(range(author_count), cum_weights=author_cum, k=posts)
    start = END - SPAN
    post_rows = []
    topic_first_author: dict[int, int] = {}
    last_activity = [0.0] * topic_count
    replies = [0] * topic_count
    reply_ids: dict[int, int] = {}
    for post_id, ((at, topic_index, first), author) in enumerate(zip(events, authors_drawn, strict=True), 1):
        hidden = rng.random() < 0.005
        if first:
            topic_first_author[topic_index] = author
        else:
            if not hidden:
                replies[topic_index] += 1
            if topic_index not in reply_ids or rng.random() < 0.3:
                reply_ids[topic_index] = post_id
        last_activity[topic_index] = max(last_activity[topic_index], at)
        post_rows.append(
            (post_id, topic_index + 1, author, authors[author][4], first, start + timedelta(seconds=at), hidden)
        )
    topic_rows = []
    for topic_index, created in enumerate(topic_times):
        solution = reply_ids.get(topic_index) if rng.random() < 0.2 else None
        topic_rows.append(
            (
                topic_index + 1,
                rng.choices(range(1, len(CATEGORIES) + 1), cum_weights=category_cum)[0],
                title_text(rng, vocab),
                authors[topic_first_author[topic_index]][0],
                start + timedelta(seconds=created),
                start + timedelta(seconds=last_activity[topic_index]),
                replies[topic_index],
                rng.random() < 0.002,
                solution,
            )
        )
    return Plan(topic_rows, post_rows, authors)


# --- loading -------------------------------------------------------------------------------------
def admin_url() -> str:
    return (os.environ.get("POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres").replace(
        "postgresql+psycopg://", "postgresql://"
    )


def database_url(name: str, driver: str = "postgresql") -> str:
    """The URL of database `name` on the admin server (psycopg's, or SQLAlchemy's with
    driver "postgresql+psycopg")."""
    from sqlalchemy.engine import make_url

    return make_url(admin_url()).set(drivername=driver, database=name).render_as_string(hide_password=False)


def migration_head() -> str:
    from alembic.script import ScriptDirectory

    from shared.migrations import alembic_config

    return ScriptDirectory.from_config(alembic_config("forum", "postgresql://unused")).get_current_head()


def cache_key(posts: int) -> str:
    return json.dumps({"generator": GENERATOR, "posts": posts, "seed": SEED, "forum_migrations": migration_head()})


def _admin(statement: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(admin_url(), autocommit=True) as connection:
        cursor = connection.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def existing_cache(name: str) -> str | None:
    rows = _admin(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        (name,),
    )
    return (rows[0][0] or "") if rows else None


def drop_database(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _copy_rows(connection, statement: str, rows) -> None:
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _generate_chunk(job: tuple) -> int:
    """In a generator process: the bodies of one chunk of posts, COPYed into the staging table."""
    import psycopg

    url, chunk_index, rows, titles = job
    vocab = _worker_vocabulary()
    rng = random.Random(SEED * 1000 + chunk_index)
    with psycopg.connect(url) as connection:
        connection.execute("SET synchronous_commit = off")
        with connection.cursor() as cursor:
            statement = (
                "COPY bench_posts_staging (id, topic_id, author_id, by_staff, title, body, created_at, hidden) "
                "FROM STDIN"
            )
            with cursor.copy(statement) as copy:
                for post_id, topic_id, author_id, by_staff, first, created_at, hidden in rows:
                    body = sentence_text(rng, vocab, rng.randint(20, 120))
                    copy.write_row(
                        (post_id, topic_id, author_id, by_staff, titles.get(topic_id) if first else None, body)
                        + (created_at, hidden)
                    )
        connection.commit()
    return len(rows)


_VOCAB: Vocabulary | None = None


def _worker_vocabulary() -> Vocabulary:
    global _VOCAB
    if _VOCAB is None:
        _VOCAB = vocabulary()
    return _VOCAB


def _parallel(url: str, statements: list[list[str]]) -> None:
    """Each list of statements on a connection of its own, the lists at the same time."""
    import psycopg

    errors: list[BaseException] = []

    def work(batch: list[str]) -> None:
        try:
            with psycopg.connect(url, autocommit=True) as connection:
                for statement in batch:
                    connection.execute(statement)
        except BaseException as error:  # reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=work, args=(batch,)) for batch in statements if batch]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def load(name: str, posts: int, log: Callable[[str], None], workers: int = 2) -> dict:
    """Create database `name`, migrate it with forum's migrations and fill it; seconds per step."""
    import multiprocessing

    import psycopg

    from shared.migrations import upgrade

    steps: dict[str, float] = {}
    began = time.monotonic()
    _admin(f'CREATE DATABASE "{name}"')
    upgrade("forum", database_url(name, "postgresql+psycopg"))
    url = database_url(name)
    steps["migrate"] = time.monotonic() - began

    mark = time.monotonic()
    layout = plan(posts)
    steps["plan"] = time.monotonic() - mark

    mark = time.monotonic()
    with psycopg.connect(url) as connection:
        connection.execute("SET synchronous_commit = off")
        indexes = connection.execute(
            "SELECT indexname, indexdef FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname "
            "JOIN pg_index x ON x.indexrelid = c.oid "
            "WHERE i.schemaname = 'public' AND i.tablename = 'posts' AND NOT x.indisprimary"
        ).fetchall()
        foreign_keys = connection.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'posts'::regclass AND contype = 'f'"
        ).fetchall()
        for constraint, _ in foreign_keys:
            connection.execute(f'ALTER TABLE posts DROP CONSTRAINT "{constraint}"')
        for index, _ in indexes:
            connection.execute(f'DROP INDEX "{index}"')
        for position, (category, description, product, _) in enumerate(CATEGORIES):
            connection.execute(
                "INSERT INTO categories (id, name, description, position, product) VALUES (%s, %s, %s, %s, %s)",
                (position + 1, category, description, position, product),
            )
        _copy_rows(
            connection,
            "COPY authors (user_id, name, email, company_name, staff, active, version) FROM STDIN",
            (row + (True, 1) for row in layout.authors),
        )
        _copy_rows(
            connection,
            "COPY topics (id, category_id, title, author_id, created_at, last_activity_at, replies, hidden, "
            "solution_post_id, pinned, locked) FROM STDIN",
            (row + (False, False) for row in layout.topics),
        )
        connection.execute(
            "CREATE UNLOGGED TABLE bench_posts_staging (id integer, topic_id integer, author_id text, "
            "by_staff boolean, title text, body text, created_at timestamptz, hidden boolean)"
        )
        connection.commit()
    steps["topics, authors"] = time.monotonic() - mark

    mark = time.monotonic()
    titles = {row[0]: row[2] for row in layout.topics}
    author_ids = [row[0] for row in layout.authors]
    chunk = 20_000
    jobs = []
    for index, at in enumerate(range(0, posts, chunk)):
        rows = [
            (post_id, topic_id, author_ids[author], by_staff, first, created_at, hidden)
            for post_id, topic_id, author, by_staff, first, created_at, hidden in layout.posts[at : at + chunk]
        ]
        jobs.append((url, index, rows, {r[1]: titles[r[1]] for r in rows if r[4]}))
    del layout
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with context.Pool(workers) as pool:
        written = sum(pool.imap_unordered(_generate_chunk, jobs))
    if written != posts:
        raise RuntimeError(f"generated {written} posts of {posts}")
    steps["generate + COPY"] = time.monotonic() - mark

    mark = time.monotonic()
    halves = [(1, posts // 2), (posts // 2 + 1, posts)]
    _parallel(
        url,
        [
            [
                "SET synchronous_commit = off",
                "INSERT INTO posts (id, topic_id, author_id, by_staff, body, body_html, created_at, edited_at, "
                "hidden, search_vector) "
                "SELECT id, topic_id, author_id, by_staff, body, '<p>' || body || '</p>', created_at, NULL, hidden, "
                "setweight(to_tsvector('forum_search', coalesce(title, '')), 'A') || "
                "setweight(to_tsvector('forum_search', body), 'B') "
                f"FROM bench_posts_staging WHERE id BETWEEN {low} AND {high}",
            ]
            for low, high in halves
        ],
    )
    steps["posts + search vectors"] = time.monotonic() - mark

    mark = time.monotonic()
    gin = [definition for _, definition in indexes if " using gin " in definition.lower()]
    other = [definition for _, definition in indexes if " using gin " not in definition.lower()]
    _parallel(
        url,
        [
            ["DROP TABLE bench_posts_staging", "SET maintenance_work_mem = '1GB'", *gin],
            ["SET maintenance_work_mem = '512MB'", *other]
            + [f'ALTER TABLE posts ADD CONSTRAINT "{name}" {definition}' for name, definition in foreign_keys],
        ],
    )
    steps["indexes, foreign keys"] = time.monotonic() - mark

    mark = time.monotonic()
    with psycopg.connect(url, autocommit=True) as connection:
        for table in ("topics", "posts", "authors", "categories"):
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                if table != "authors"
                else "SELECT 1"
            )
        connection.execute("VACUUM (ANALYZE) authors, categories, topics, posts")
        size = connection.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    steps["vacuum analyze"] = time.monotonic() - mark
    _admin(f"COMMENT ON DATABASE \"{name}\" IS '{cache_key(posts)}'")
    steps["total"] = time.monotonic() - began
    log(f"  loaded {name}: {posts:,} posts, {size}, " + ", ".join(f"{k} {v:.0f} s" for k, v in steps.items()))
    return {"seconds": steps, "size": size}


@contextlib.contextmanager
def forum_database(posts: int, keep: bool, log: Callable[[str], None]):
    """A loaded database of `posts` posts: yields (name, load figures or None when reused)."""
    if keep:
        name = "bench_forum_scale" if posts == POSTS else f"bench_forum_scale_{posts}"
        found = existing_cache(name)
        if found == cache_key(posts):
            log(f"  reusing {name} (--keep)")
            yield name, None
            return
        if found is not None:
            log(f"  {name} was made by another generator or migration head: rebuilding it")
            drop_database(name)
        yield name, load(name, posts, log)
        return
    name = f"cc_bench_scale_forum_{posts}_{uuid.uuid4().hex[:8]}"
    try:
        figures = load(name, posts, log)
        yield name, figures
    finally:
        drop_database(name)


# --- the queries ---------------------------------------------------------------------------------
PREFIXES = ["faktur", "účetn", "objednáv", "aktualiz", "sklad", "mzd", "zálo", "daňov", "výpis", "instal"]
PAIRS = [
    ("faktura", "DPH"),
    ("export", "XML"),
    ("mzdy", "zaměstnanec"),
    ("tisk", "sestavy"),
    ("chyba", "databáze"),
    ("aktualizace", "verze"),
    ("kontrolní", "hlášení"),
    ("přiznání", "daně"),
    ("sklad", "inventura"),
    ("licence", "registrace"),
    ("bankovní", "výpis"),
    ("objednávka", "dodavatele"),
]
UNACCENTED = [
    "ucetnictvi",
    "zaverka",
    "dan",
    "priznani",
    "zalohovani",
    "tiskarna",
    "objednavka",
    "uzaverka",
    "prijemka",
    "danovy",
    "zamestnanec",
    "pojisteni",
]


def queries(per_class: int, seed: int = SEED) -> list[tuple[str, str]]:
    """(class, query) × per_class for each class, in a fixed order."""
    vocab = vocabulary(seed)
    rng = random.Random(seed + 1)
    # Rare: real words of the tail and synthetic ones, ranked 5,000-30,000 (200 to 1,300 posts
    # in a million).
    tail = vocab.words[5000:30000]
    rare_real = [w for w in tail if w in set(DOMAIN_WORDS)]
    rare = rare_real[:8] + rng.sample([w for w in tail if w not in set(DOMAIN_WORDS)], 24)
    pools = {
        "common": list(COMMON),
        "rare": rare,
        "two words": [f"{a} {b}" for a, b in PAIRS],
        "no diacritics": list(UNACCENTED),
        "prefix": list(PREFIXES),
    }
    chosen = []
    for kind in CLASSES:
        pool = pools[kind]
        rng.shuffle(pool)
        chosen += [(kind, pool[i % len(pool)]) for i in range(per_class)]
    return chosen


# --- measuring -----------------------------------------------------------------------------------
class SearchClient:
    """GET /api/v1/forum/search on forum's own port, one keep-alive connection, as a signed-in
    customer (the X-Identity token the gateway would send, renewed well inside its TTL)."""

    def __init__(self, base_url: str, secret: str, user_id: str):
        from shared.auth import Principal

        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.secret = secret
        self.principal = Principal(user_id, kind="user", name="Bench Zákazník", client="127.0.0.1")
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        self._token, self._issued = "", 0.0

    def _headers(self) -> dict[str, str]:
        from shared import auth

        if time.monotonic() - self._issued > 20:
            self._token, self._issued = auth.issue(self.secret, "forum", self.principal), time.monotonic()
        return {auth.HEADER: self._token}

    def search(self, q: str, limit: int = 20) -> tuple[float, list]:
        """(ms from request to the last byte of the answer, the hits)."""
        headers = self._headers()
        target = f"/api/v1/forum/search?q={quote(q)}&limit={limit}"
        for attempt in (1, 2):
            began = time.perf_counter()
            try:
                self.conn.request("GET", target, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (OSError, http.client.HTTPException):
                # gunicorn closes a keep-alive connection idle for 5 s (a slow query on the
                # other database meanwhile): a new connection, and the time starts again.
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt == 2:
                    raise
        elapsed = (time.perf_counter() - began) * 1000
        if response.status != 200:
            raise RuntimeError(f"search {q!r}: {response.status} {raw[:300]!r}")
        return elapsed, json.loads(raw)["items"]

    def close(self) -> None:
        self.conn.close()


def summary(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per class and "all": count, p50, p95, p99, max (ms)."""
    out = {}
    every = [x for values in samples.values() for x in values]
    for kind, values in [*samples.items(), ("all", every)]:
        out[kind] = {
            "n": len(values),
            "p50": percentile(values, 0.5),
            "p95": percentile(values, 0.95),
            "p99": percentile(values, 0.99),
            "max": max(values, default=float("nan")),
        }
    return out


def match_counts(url: str, distinct: list[str]) -> dict[str, int]:
    """How many posts each query matches (the tsquery search.py builds, visible posts only)."""
    import psycopg
    from forum import search

    counts = {}
    with psycopg.connect(url) as connection:
        for q in distinct:
            tsquery = " & ".join(f"'{word}':*" for word in search.terms(q))
            counts[q] = connection.execute(
                "SELECT count(*) FROM posts p JOIN topics t ON t.id = p.topic_id "
                "WHERE p.search_vector @@ to_tsquery('forum_search', %s) AND NOT p.hidden AND NOT t.hidden",
                (tsquery,),
            ).fetchone()[0]
    return counts


def explain(url: str, q: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL `forum.search.search` sends for `q`, captured from
    the service's own code as it runs (so it is always the current query)."""
    from forum import search
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from shared.db import make_engine

    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "search_vector" in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            search.search(session, q)
        if not captured:
            return "(no search statement captured)"
        statement, parameters = captured[-1]
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            with raw.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                return "\n".join(row[0] for row in cursor.fetchall())
    finally:
        engine.dispose()


def measure_forum(
    options: Options,
    log: Callable[[str], None] = print,
    *,
    posts: int = POSTS,
    baseline_posts: int = BASELINE_POSTS,
    per_class: int = PER_CLASS,
    keep: bool = False,
    show_plans: bool = False,
) -> dict:
    split = cpu_split() if options.pin else None
    client_cpus = split[0] if split else None
    mix = queries(per_class)
    distinct = list(dict.fromkeys(q for _, q in mix))
    # A query may be in two classes ("sklad": a common word and a prefix): per class and query.
    classes = {kind: sorted({q for k, q in mix if k == kind}) for kind in CLASSES}
    figures: dict = {"posts": posts, "baseline_posts": baseline_posts, "pinned": bool(split), "queries": len(mix)}
    with contextlib.ExitStack() as stack:
        databases = {}
        for label, count in (("baseline", baseline_posts), ("scale", posts)):
            name, loaded = stack.enter_context(forum_database(count, keep, log))
            databases[label] = name
            figures[f"{label}_load"] = loaded
        samples, by_query, hits, warmup = _search_rounds(options, log, databases, mix, distinct, client_cpus)
        figures["warmup_seconds"] = warmup
        figures["summary"] = {label: summary(samples[label]) for label in databases}
        figures["per_query_ms"] = {
            label: {kind: {q: percentile(by_query[label][kind, q], 0.5) for q in qs} for kind, qs in classes.items()}
            for label in databases
        }
        figures["hits"] = hits
        # With the servers stopped: how many posts each query matches, and the plans.
        figures["matches"] = {label: match_counts(database_url(name), distinct) for label, name in databases.items()}
        figures["plans"] = {}
        slowest = {kind: max(ms, key=ms.get) for kind, ms in figures["per_query_ms"]["scale"].items()}
        figures["slowest"] = slowest
        if show_plans:
            for kind in CLASSES:
                plan_text = explain(database_url(databases["scale"]), slowest[kind])
                figures["plans"][kind] = {"query": slowest[kind], "plan": plan_text}
                log(f"  EXPLAIN ANALYZE, {kind}, {slowest[kind]!r}, {posts:,} posts:")
                for line in plan_text.splitlines():
                    log(f"    {line}")
    figures["classes"] = classes
    return figures


def _search_rounds(options: Options, log, databases: dict[str, str], mix, distinct, client_cpus):
    """Start forum once per database, warm up, then `options.runs` rounds of the mix."""
    with contextlib.ExitStack() as stack:
        suites, clients = {}, {}
        for label, name in databases.items():
            # The databases are ours, not BenchSuite temp ones: run the suite "on SQLite" so it
            # creates none, and point forum at ours (its migrate step is then a no-op).
            suites[label] = stack.enter_context(
                BenchSuite(
                    ["forum"],
                    dataclasses.replace(options, database="sqlite"),
                    {"FORUM_DATABASE_URL": database_url(name, "postgresql+psycopg")},
                )
            )
            clients[label] = SearchClient(suites[label].web_url("forum"), suites[label].secret, f"bench-reader-{label}")
            stack.callback(clients[label].close)

        began = time.monotonic()
        hits: dict[str, dict[str, int]] = {label: {} for label in databases}
        with affinity(client_cpus):
            for q in distinct:
                for label, client in clients.items():
                    _, items = client.search(q)
                    hits[label][q] = len(items)
        warmup = time.monotonic() - began
        if options.verbose:
            log(f"  warm-up: {len(distinct)} distinct queries on both databases, {warmup:.1f} s")

        samples: dict[str, dict[str, list[float]]] = {label: {k: [] for k in CLASSES} for label in databases}
        by_query: dict[str, dict[tuple[str, str], list[float]]] = {
            label: {pair: [] for pair in mix} for label in databases
        }
        rng = random.Random(SEED + 2)
        with affinity(client_cpus):
            for round_number in range(options.runs):
                order = list(mix)
                rng.shuffle(order)
                round_began = time.monotonic()
                this_round = []
                for index, (kind, q) in enumerate(order):
                    labels = list(clients) if index % 2 == 0 else list(reversed(clients))
                    for label in labels:
                        elapsed, _ = clients[label].search(q)
                        samples[label][kind].append(elapsed)
                        by_query[label][kind, q].append(elapsed)
                        if label == "scale":
                            this_round.append(elapsed)
                for suite in suites.values():
                    suite.check_alive()
                if options.verbose:
                    log(
                        f"  round {round_number + 1}: {time.monotonic() - round_began:.0f} s, "
                        f"p50 {percentile(this_round, 0.5):.1f} ms, p95 {percentile(this_round, 0.95):.1f} ms"
                    )
    return samples, by_query, hits, warmup


def forum_part(
    options: Options,
    log: Callable[[str], None] = print,
    *,
    posts: int = POSTS,
    baseline_posts: int = BASELINE_POSTS,
    per_class: int = PER_CLASS,
    keep: bool = False,
    show_plans: bool = False,
) -> tuple[list[Metric], list[str], dict]:
    f = measure_forum(
        options,
        log,
        posts=posts,
        baseline_posts=baseline_posts,
        per_class=per_class,
        keep=keep,
        show_plans=show_plans,
    )
    scale, base = f["summary"]["scale"], f["summary"]["baseline"]
    metrics = [
        Metric(
            f"forum search p95, {posts:,} posts",
            scale["all"]["p95"],
            " ms",
            f"<= {TARGET_MS:g} ms",
            scale["all"]["p95"] <= TARGET_MS,
        )
    ]
    for kind in CLASSES:
        metrics.append(info(f"forum search p95, {posts:,} posts, {kind}", scale[kind]["p95"], " ms"))
    metrics.append(info(f"forum search p95, {baseline_posts:,} posts (baseline)", base["all"]["p95"], " ms"))
    notes = [
        f"{f['queries']} queries × {options.runs} rounds, one connection, forum's own port, "
        f"{'pinned (client | servers)' if f['pinned'] else 'not pinned'}",
    ]
    for label, count in (("scale", posts), ("baseline", baseline_posts)):
        loaded = f[f"{label}_load"]
        notes.append(
            f"{count:,} posts: "
            + (
                f"loaded in {loaded['seconds']['total']:.0f} s ({loaded['size']})"
                if loaded
                else "kept database reused (no load)"
            )
        )
    matched = {
        label: {kind: percentile([f["matches"][label][q] for q in f["classes"][kind]], 0.5) for kind in CLASSES}
        for label in ("scale", "baseline")
    }
    matched["scale"]["all"] = percentile(list(f["matches"]["scale"].values()), 0.5)
    notes.append(f"ms; 'matches': posts a query of the class finds (median of its distinct queries), of {posts:,}")
    notes.append(
        f"{'class':14} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'matches':>8}"
        f"   | {baseline_posts:,} posts: p50 / p95"
    )
    for kind in (*CLASSES, "all"):
        s, b = scale[kind], base[kind]
        notes.append(
            f"{kind:14} {s['p50']:8.1f} {s['p95']:8.1f} {s['p99']:8.1f} {s['max']:8.1f} {matched['scale'][kind]:8.0f}"
            f"   | {b['p50']:.1f} / {b['p95']:.1f}"
        )
    notes.append(
        f"slowest query per class (median ms, {posts:,} posts): "
        + ", ".join(f"{kind} {q!r} {f['per_query_ms']['scale'][kind][q]:.0f}" for kind, q in f["slowest"].items())
    )
    return metrics, notes, f


def run(
    options: Options,
    log: Callable[[str], None] = print,
    parts: tuple[str, ...] = PARTS,
    **forum_options,
) -> Result:
    metrics: list[Metric] = []
    notes: list[str] = []
    details: dict = {}
    if "forum" in parts:
        # `python -m bench` has no --keep: BENCH_SCALE_KEEP=1 keeps and reuses the data there too.
        forum_options["keep"] = forum_options.get("keep") or os.environ.get("BENCH_SCALE_KEEP") == "1"
        m, n, d = forum_part(options, log, **forum_options)
        metrics += m
        notes += n
        details["forum"] = d
    return Result(NAME, metrics, notes, details)


def main(argv: list[str] | None = None) -> int:
    from bench import __main__ as runner

    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("parts", nargs="*", metavar="part", help=f"one of: {', '.join(PARTS)} (default: all)")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"rounds of the whole query mix (default {RUNS})")
    parser.add_argument("--posts", type=int, default=POSTS, help="posts in the big database")
    parser.add_argument("--baseline-posts", type=int, default=BASELINE_POSTS, help="posts in the baseline database")
    parser.add_argument("--per-class", type=int, default=PER_CLASS, help="queries per class in the mix")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the loaded databases")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest query of each class")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin client and server to CPUs")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each round")
    args = parser.parse_args(argv)
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}; known: {', '.join(PARTS)}")
    options = Options(runs=args.runs, pin=args.pin, keep_logs=args.keep_logs, verbose=args.verbose)
    print(f"== {NAME}", flush=True)
    began = time.monotonic()
    result = run(
        options,
        log=lambda line: print(line, flush=True),
        parts=tuple(args.parts) or PARTS,
        posts=args.posts,
        baseline_posts=args.baseline_posts,
        per_class=args.per_class,
        keep=args.keep,
        show_plans=args.explain,
    )
    for note in result.notes:
        print(f"  {note}")
    print(f"  ({time.monotonic() - began:.0f} s)\n")
    print(runner.table([result]))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({NAME: result.details}, out, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
