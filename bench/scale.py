"""scale: the forum's search over 1,000,000 posts and the license list of a customer with
10,000 licenses, both on PostgreSQL.

Target (docs/quality.md): p95 <= 50 ms each. The target is absolute; the same requests on a
small data set (10,000 posts; a customer with 10 licenses), measured in the same run, are
printed beside it for comparison.

`python -m bench.scale [forum] [licenses] [--keep] [--explain] [--posts N] [--per-class N]
[--licenses N] [--customers N] [--sessions N] [common options]` (or `python -m bench scale`).
Parts: `forum` and `licenses`; without a part, both.

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
  read from the catalogue, so whatever the migrations made comes back); the search word list
  (`post_search_terms`) is filled from `ts_stat` as forum's migration 0003 does; then
  `VACUUM ANALYZE`. `--keep` keeps the databases (`bench_forum_scale`, `bench_forum_scale_10000`) for the next
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

**License list.** What a customer's user gets: `GET /api/v1/customers/{n}/licenses` on the
licensing service's own gunicorn port (the Procfile's `licensing` entry, `BenchSuite`), with
the `X-Identity` token the gateway would send for a user who is a member of customer `n` with
the `licenses` right (that membership is a row of licensing's memberships replica, as
identity's event would have left it).

- **Data**: a PostgreSQL database migrated with licensing's own migrations, then the
  catalogue (14 products with their editions and add-ons), 40 partners, and 20,002
  customers: 20,000 with 1-50 licenses each (log-uniform: small customers most often) and,
  among them, the measured customer with 10,000 registered licenses and the baseline customer
  with 10 (each also has partner sales not registered yet, ~3 %, and revoked licenses, ~2 %,
  which the list must skip); ~256,000 licenses in all. A license: a product by its share of
  the sales, an edition, 0-3 add-ons, 1-25 seats, sold directly (60 %) or by a partner
  (40 %: 85 % registered, 12 % not yet, 3 % revoked) on a day of the last ten years; support
  (SERVIS) none (15 %) or renewed for some years from the sale, so ended in the past or
  ending in the future. Ids follow the sales, so one customer's licenses are scattered over
  the whole table. Each customer has an administrator's membership.
- **Loading** (≈ 20 s): COPY into the migrated tables, `VACUUM ANALYZE`. `--keep` keeps the
  database (`bench_licensing_scale`, key in its `COMMENT`: generator, sizes, seed,
  licensing's migration head) as for the forum.
- **Requests**: one user's session of the list: the first page sorted by product and
  `NEXT_PAGES` (4) pages by `next`; the same sorted by `support_until`; the last page of each
  sort (a deep page: its cursor is the one the walk below ended with); the CSV export
  `licenses.csv` (information: 10,000 rows of CSV are not a list page). Pages of 100 (the
  API's default). Warm-up and check: every page of both sorts by `next` once, for both
  customers (each registered license exactly once, in its sort's order) and the CSV once.
  Then `--runs` rounds of `--sessions` (10) sessions per customer, the two customers in
  turn, one keep-alive connection, one request at a time. p50/p95/p99 per class (first page,
  next page, deep page, CSV); the target applies to the overall p95 of the list pages of the
  10,000-license customer.
- **Where the time goes** (`--explain`): licensing's view answers the first and the deep
  page of each sort and the CSV in-process; the licenses SQL it sends is captured and run
  again under `EXPLAIN (ANALYZE, BUFFERS)`.

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
import math
import os
import random
import sys
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
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
    valid_company_id,
)

NAME = "scale"
PARTS = ("forum", "licenses")
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


def migration_head(component: str = "forum") -> str:
    from alembic.script import ScriptDirectory

    from shared.migrations import alembic_config

    return ScriptDirectory.from_config(alembic_config(component, "postgresql://unused")).get_current_head()


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
            + [f'ALTER TABLE posts ADD CONSTRAINT "{name}" {definition}' for name, definition in foreign_keys]
            # search's word list, filled from the vectors as forum's migration 0003 does
            + [
                "INSERT INTO post_search_terms (term, posts) "
                "SELECT word, ndoc FROM ts_stat('SELECT search_vector FROM posts')"
            ],
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
        connection.execute("VACUUM (ANALYZE) authors, categories, topics, posts, post_search_terms")
        size = connection.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    steps["vacuum analyze"] = time.monotonic() - mark
    _admin(f"COMMENT ON DATABASE \"{name}\" IS '{cache_key(posts)}'")
    steps["total"] = time.monotonic() - began
    log(f"  loaded {name}: {posts:,} posts, {size}, " + ", ".join(f"{k} {v:.0f} s" for k, v in steps.items()))
    return {"seconds": steps, "size": size}


@contextlib.contextmanager
def kept_database(name: str, key: str, temporary: str, fill: Callable[[str], dict], keep: bool, log):
    """A loaded database: yields (name, load figures or None when reused). With `keep` it is
    `name`, reused while its COMMENT is `key` and rebuilt otherwise; without, `temporary`,
    dropped afterwards. `fill(name)` creates and loads one."""
    if keep:
        found = existing_cache(name)
        if found == key:
            log(f"  reusing {name} (--keep)")
            yield name, None
            return
        if found is not None:
            log(f"  {name} was made by another generator, size or migration head: rebuilding it")
            drop_database(name)
        yield name, fill(name)
        return
    try:
        yield temporary, fill(temporary)
    finally:
        drop_database(temporary)


def forum_database(posts: int, keep: bool, log: Callable[[str], None]):
    """A loaded forum database of `posts` posts (see `kept_database`)."""
    return kept_database(
        "bench_forum_scale" if posts == POSTS else f"bench_forum_scale_{posts}",
        cache_key(posts),
        f"cc_bench_scale_forum_{posts}_{uuid.uuid4().hex[:8]}",
        lambda name: load(name, posts, log),
        keep,
        log,
    )


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
def p95_against_target(measure: str, p95_ms: float) -> Metric:
    """The figure quality.md's target applies to (both halves: p95 <= TARGET_MS)."""
    return Metric(measure, p95_ms, " ms", f"<= {TARGET_MS:g} ms", p95_ms <= TARGET_MS)


class ServiceClient:
    """GETs on one service's own port, one keep-alive connection, as the signed-in user the
    gateway vouches for (the X-Identity token it would send, renewed well inside its TTL)."""

    def __init__(self, base_url: str, secret: str, service: str, user_id: str, name: str):
        from shared.auth import Principal

        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.secret, self.service = secret, service
        self.principal = Principal(user_id, kind="user", name=name, client="127.0.0.1")
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        self._token, self._issued = "", 0.0

    def get(self, target: str) -> tuple[float, bytes]:
        """(ms from request to the last byte of the answer, the answer); not 200 raises."""
        from shared import auth

        if time.monotonic() - self._issued > 20:
            self._token, self._issued = auth.issue(self.secret, self.service, self.principal), time.monotonic()
        for attempt in (1, 2):
            began = time.perf_counter()
            try:
                self.conn.request("GET", target, headers={auth.HEADER: self._token})
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (OSError, http.client.HTTPException):
                # gunicorn closes a keep-alive connection idle for 5 s (a slow request on the
                # other database meanwhile): a new connection, and the time starts again.
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt == 2:
                    raise
        elapsed = (time.perf_counter() - began) * 1000
        if response.status != 200:
            raise RuntimeError(f"GET {target}: {response.status} {raw[:300]!r}")
        return elapsed, raw

    def close(self) -> None:
        self.conn.close()


class SearchClient(ServiceClient):
    """GET /api/v1/forum/search on forum's own port as a signed-in customer."""

    def __init__(self, base_url: str, secret: str, user_id: str):
        super().__init__(base_url, secret, "forum", user_id, "Bench Zákazník")

    def search(self, q: str, limit: int = 20) -> tuple[float, list]:
        """(ms from request to the last byte of the answer, the hits)."""
        elapsed, raw = self.get(f"/api/v1/forum/search?q={quote(q)}&limit={limit}")
        return elapsed, json.loads(raw)["items"]


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
    metrics = [p95_against_target(f"forum search p95, {posts:,} posts", scale["all"]["p95"])]
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


# =================================================================================================
# The license list: one customer with 10,000 licenses among 20,000 ordinary ones
# =================================================================================================
LICENSES = 10_000
BASELINE_LICENSES = 10
CUSTOMERS = 20_000  # the other customers, 1-50 licenses each
SESSIONS = 10  # user sessions per customer and round
NEXT_PAGES = 4  # pages followed by `next` in each sort of a session
PAGE_LIMIT = 100  # the API's default page
SORTS = ("product", "support_until")
PAGE_CLASSES = ("first page", "next page", "deep page")
# Bump when the generated licensing data changes: a kept database made by another version is rebuilt.
LICENSE_GENERATOR = 1
READER = "bench-license-reader"  # the member (user id) whose sessions are measured
SALES_END = date(2026, 11, 1)
SALES_YEARS = 10

# The vendor's catalogue: code, name, editions, add-ons, share of the sales.
PRODUCTS = [
    (
        "ucetnictvi",
        "Účetnictví",
        ["Mini", "Standard", "Profi", "Premium"],
        ["Mzdy", "Sklad", "Majetek", "Kniha jízd"],
        30,
    ),
    ("danova-evidence", "Daňová evidence", ["Mini", "Standard", "Profi"], ["Kniha jízd", "Homebanking"], 14),
    ("mzdy", "Mzdy a personalistika", ["Standard", "Profi"], ["Docházka", "Personalistika", "Stravenky"], 12),
    ("sklad", "Sklad a fakturace", ["Standard", "Profi", "Premium"], ["EET", "Intrastat", "Čárové kódy"], 10),
    ("pokladna", "Pokladna", ["Standard", "Profi"], ["EET", "Platební terminál"], 6),
    ("obchod", "Obchod a CRM", ["Standard", "Profi"], ["Kampaně", "Servisní zakázky"], 6),
    ("server-sql", "Databázový server SQL", ["Standard", "Enterprise"], ["Zálohování", "Replikace"], 6),
    ("eshop", "E-shop konektor", ["Standard"], ["Shoptet", "WooCommerce", "PrestaShop"], 5),
    ("majetek", "Evidence majetku", ["Standard"], [], 4),
    ("mobilni-faktury", "Mobilní faktury", ["Standard"], [], 3),
    ("vyroba", "Výroba a kalkulace", ["Profi", "Premium"], ["Kusovníky", "Plánování"], 3),
    ("analyzy", "Manažerské analýzy", ["Standard", "Premium"], ["Power BI"], 3),
    ("cloud", "Účetnictví v cloudu", ["Mini", "Standard", "Profi"], ["Mzdy", "Sklad"], 2),
    ("ucetnictvi-2015", "Účetnictví 2015 (ukončeno)", ["Standard", "Profi"], ["Mzdy"], 2),
]
_PRODUCT_CUM = list(itertools.accumulate(p[4] for p in PRODUCTS))
PARTNERS = 40
_SURNAMES = """Novák Svoboda Novotný Dvořák Černý Procházka Kučera Veselý Horák Němec Marek Pokorný
Pospíšil Hájek Jelínek Král Růžička Beneš Fiala Sedláček Doležal Zeman Kolář Navrátil Čermák""".split()
_TRADES = """Stavebniny Účetnictví Autoservis Pekárna Elektro Truhlářství Lékárna Velkoobchod Doprava
Strojírna Kavárna Zahradnictví Reality Tiskárna Potraviny Software Projekce Instalatérství""".split()
_STREETS = "Dlouhá Husova Nádražní Palackého Školní Masarykova Polní Zahradní Komenského Tyršova".split()
_CITIES = [("Praha", "110 00"), ("Brno", "602 00"), ("Ostrava", "702 00"), ("Plzeň", "301 00"), ("Olomouc", "779 00")]
ALL_RIGHTS = ["licenses", "downloads", "documents", "news", "contacts", "users"]
LICENSE_COLUMNS = (
    "id",
    "installation_number",
    "customer_id",
    "product_code",
    "edition",
    "add_ons",
    "seats",
    "channel",
    "partner_id",
    "partner_sale_id",
    "status",
    "sold_on",
    "support_until",
    "registered_at",
    "version",
    "created_at",
)


@dataclasses.dataclass(frozen=True)
class LicenseSizes:
    licenses: int = LICENSES  # registered licenses of the measured customer
    baseline_licenses: int = BASELINE_LICENSES  # registered licenses of the baseline customer
    customers: int = CUSTOMERS  # the other customers

    def featured(self, seed: int = SEED) -> dict[str, int]:
        """The customer ids of the measured ("scale") and the baseline customer, somewhere
        among the others (cheap: a kept database needs them without the plan)."""
        scale, baseline = random.Random(seed + 20).sample(range(1, self.customers + 3), 2)
        return {"scale": scale, "baseline": baseline}


def customer_number(customer_id: int) -> str:
    from licensing.models import FIRST_CUSTOMER_NUMBER

    return str(FIRST_CUSTOMER_NUMBER + customer_id - 1)  # as licensing.customers numbers them


@dataclasses.dataclass
class LicensePlan:
    products: list[tuple]  # (code, name, editions, add_ons, created_at)
    partners: list[tuple]  # (id, name, created_at)
    customers: list[tuple]  # (id, customer_number, company_id, company_name, billing_address, created_at)
    licenses: list[tuple]  # LICENSE_COLUMNS, ids in the order of sale
    memberships: list[tuple]  # (user_id, customer_number, rights, active, changed_at)


def _installation_number(rng: random.Random) -> str:
    """A valid installation number (check character and groups), drawn from `rng`."""
    from licensing import installation_numbers as numbers

    payload = "".join(rng.choices(numbers.ALPHABET, k=numbers.RANDOM_LENGTH))
    return numbers.format_number(payload + numbers.check_character(payload))


def _draw_license(rng: random.Random, customer_id: int, partner_ids: list[str], status: str | None = None) -> list:
    """One license of `customer_id` without its id and number: a sale of the last ten years
    (direct 60 %, through a partner 40 %); a registered one has support (SERVIS) renewed for
    some years from the sale, which ended in the past or ends in the future, or none (15 %)."""
    code, _, editions, add_ons, _ = rng.choices(PRODUCTS, cum_weights=_PRODUCT_CUM)[0]
    channel = "partner" if status == "unregistered" or rng.random() < 0.4 else "direct"
    if status is None:
        draw = rng.random()
        if channel == "partner":
            status = "registered" if draw < 0.85 else "unregistered" if draw < 0.97 else "revoked"
        else:
            status = "registered" if draw < 0.98 else "revoked"
    sold_on = SALES_END - timedelta(days=rng.randrange(SALES_YEARS * 365))
    sold_at = datetime(sold_on.year, sold_on.month, sold_on.day, 8, tzinfo=UTC) + timedelta(
        seconds=rng.randrange(36000)
    )
    support_until = registered_at = None
    renewals = 0
    if status == "registered":
        registered_at = sold_at + timedelta(days=rng.randrange(60) if channel == "partner" else 0)
        if rng.random() >= 0.15:
            renewals = rng.randint(1, (SALES_END - sold_on).days // 365 + 2)
            support_until = registered_at.date() + timedelta(days=365 * renewals)
    return [
        customer_id,
        code,
        rng.choice(editions),
        json.dumps(
            sorted(rng.sample(add_ons, min(len(add_ons), rng.choice((0, 0, 0, 1, 1, 2, 3))))), ensure_ascii=False
        ),
        rng.choices((1, 2, 3, 5, 10, 25), weights=(70, 12, 6, 6, 4, 2))[0],
        channel,
        rng.choice(partner_ids) if channel == "partner" else None,
        status,
        sold_on,
        support_until,
        registered_at,
        1 + (channel == "partner" and registered_at is not None) + min(renewals, 3),
        sold_at,
    ]


def license_plan(sizes: LicenseSizes, seed: int = SEED) -> LicensePlan:
    rng = random.Random(seed + 21)
    made = datetime(2016, 1, 4, 9, tzinfo=UTC)
    products = [
        (code, name, json.dumps(editions, ensure_ascii=False), json.dumps(add_ons, ensure_ascii=False), made)
        for code, name, editions, add_ons, _ in PRODUCTS
    ]
    partners = [
        (
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            f"{rng.choice(_TRADES)} {rng.choice(_SURNAMES)} s.r.o.",
            made,
        )
        for _ in range(PARTNERS)
    ]
    partner_ids = [p[0] for p in partners]
    featured = sizes.featured(seed)
    drawn: list[list] = []
    customers, memberships = [], []
    for customer_id in range(1, sizes.customers + 3):
        if customer_id in featured.values():
            registered = sizes.licenses if customer_id == featured["scale"] else sizes.baseline_licenses
            # Partner sales not registered yet and revoked licenses: never listed, still read.
            rows = [_draw_license(rng, customer_id, partner_ids, "registered") for _ in range(registered)]
            rows += [_draw_license(rng, customer_id, partner_ids, "unregistered") for _ in range(registered // 30 + 1)]
            rows += [_draw_license(rng, customer_id, partner_ids, "revoked") for _ in range(registered // 50 + 1)]
        else:
            count = int(math.exp(rng.uniform(0, math.log(51))))  # 1-50, small customers most often
            rows = [_draw_license(rng, customer_id, partner_ids) for _ in range(count)]
        drawn += rows
        number = customer_number(customer_id)
        city, postal_code = rng.choice(_CITIES)
        name = f"{rng.choice(_TRADES)} {rng.choice(_SURNAMES)} {rng.choice(('s.r.o.', 's.r.o.', 'a.s.', 'v.o.s.'))}"
        address = {
            "street": f"{rng.choice(_STREETS)} {rng.randint(1, 200)}",
            "city": city,
            "postal_code": postal_code,
            "country": "CZ",
        }
        first_sale = min(row[-1] for row in rows)
        customers.append(
            (
                customer_id,
                number,
                valid_company_id(1_000_003 + 7 * customer_id),
                name,
                json.dumps(address, ensure_ascii=False),
                first_sale,
            )
        )
        administrator = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        memberships.append((administrator, number, json.dumps(ALL_RIGHTS), True, first_sale))
        if customer_id in featured.values():
            memberships.append((READER, number, json.dumps(["licenses", "downloads"]), True, first_sale))
    # Ids in the order of sale: a customer's licenses lie scattered over the whole table.
    drawn.sort(key=lambda row: row[-1])
    licenses = []
    for license_id, row in enumerate(drawn, 1):
        partner_sale_id = f"S-{license_id}" if row[5] == "partner" else None
        licenses.append((license_id, _installation_number(rng), *row[:7], partner_sale_id, *row[7:]))
    return LicensePlan(products, partners, customers, licenses, memberships)


def licenses_cache_key(sizes: LicenseSizes) -> str:
    return json.dumps(
        {
            "generator": LICENSE_GENERATOR,
            **dataclasses.asdict(sizes),
            "seed": SEED,
            "licensing_migrations": migration_head("licensing"),
        }
    )


def load_licenses(name: str, sizes: LicenseSizes, log: Callable[[str], None]) -> dict:
    """Create database `name`, migrate it with licensing's migrations and fill it; seconds per step."""
    import psycopg

    from shared.migrations import upgrade

    steps: dict[str, float] = {}
    began = time.monotonic()
    _admin(f'CREATE DATABASE "{name}"')
    upgrade("licensing", database_url(name, "postgresql+psycopg"))
    steps["migrate"] = time.monotonic() - began

    mark = time.monotonic()
    layout = license_plan(sizes)
    steps["plan"] = time.monotonic() - mark

    mark = time.monotonic()
    # COPY with the migrations' indexes in place: a quarter of a million rows does not need
    # the forum's drop-and-recreate.
    with psycopg.connect(database_url(name)) as connection:
        connection.execute("SET synchronous_commit = off")
        _copy_rows(connection, "COPY products (code, name, editions, add_ons, created_at) FROM STDIN", layout.products)
        _copy_rows(connection, "COPY partners (id, name, created_at) FROM STDIN", layout.partners)
        _copy_rows(
            connection,
            "COPY customers (id, customer_number, company_id, company_name, billing_address, created_at) FROM STDIN",
            layout.customers,
        )
        _copy_rows(connection, f"COPY licenses ({', '.join(LICENSE_COLUMNS)}) FROM STDIN", layout.licenses)
        _copy_rows(
            connection,
            "COPY memberships (user_id, customer_number, rights, active, changed_at) FROM STDIN",
            layout.memberships,
        )
        for table in ("customers", "licenses"):
            connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        connection.commit()
    steps["COPY"] = time.monotonic() - mark

    mark = time.monotonic()
    with psycopg.connect(database_url(name), autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE) products, partners, customers, licenses, memberships")
        size = connection.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    steps["vacuum analyze"] = time.monotonic() - mark
    _admin(f"COMMENT ON DATABASE \"{name}\" IS '{licenses_cache_key(sizes)}'")
    steps["total"] = time.monotonic() - began
    log(
        f"  loaded {name}: {len(layout.licenses):,} licenses of {len(layout.customers):,} customers, {size}, "
        + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
    )
    return {"seconds": steps, "size": size, "licenses": len(layout.licenses), "customers": len(layout.customers)}


def licensing_database(sizes: LicenseSizes, keep: bool, log: Callable[[str], None]):
    """A loaded licensing database (see `kept_database`)."""
    return kept_database(
        "bench_licensing_scale",
        licenses_cache_key(sizes),
        f"cc_bench_scale_licensing_{sizes.licenses}_{uuid.uuid4().hex[:8]}",
        lambda name: load_licenses(name, sizes, log),
        keep,
        log,
    )


class LicenseClient(ServiceClient):
    """A customer's license list (and its CSV) on licensing's own port, as a member with the
    `licenses` right."""

    def __init__(self, base_url: str, secret: str, user_id: str = READER):
        super().__init__(base_url, secret, "licensing", user_id, "Bench Správce licencí")

    def page(self, customer: str, sort: str, cursor: str | None = None, limit: int = PAGE_LIMIT) -> tuple[float, dict]:
        target = f"/api/v1/customers/{customer}/licenses?sort={sort}&limit={limit}"
        if cursor is not None:
            target += f"&cursor={quote(cursor)}"
        elapsed, raw = self.get(target)
        return elapsed, json.loads(raw)

    def csv(self, customer: str, sort: str = "product") -> tuple[float, int]:
        """(ms, data rows of the CSV)."""
        elapsed, raw = self.get(f"/api/v1/customers/{customer}/licenses.csv?sort={sort}")
        return elapsed, raw.count(b"\n") - 1


def walk(client: LicenseClient, customer: str, sort: str, expected: int, limit: int = PAGE_LIMIT) -> dict:
    """Every page of the list by following `next`, checked: each of the customer's `expected`
    registered licenses exactly once, in the order of `sort`. Returns the time of each page
    and the cursor of the last page (None when one page holds them all)."""
    times, items, cursor, last = [], [], None, None
    while True:
        elapsed, body = client.page(customer, sort, cursor, limit)
        times.append(elapsed)
        items += body["items"]
        if body["next"] is None:
            break
        last = cursor = body["next"]
    numbers = [item["installation_number"] for item in items]
    problem = None
    if len(items) != expected or len(set(numbers)) != expected:
        problem = f"{len(items)} items, {len(set(numbers))} distinct, not the {expected} registered licenses"
    elif any(item["status"] != "registered" for item in items):
        problem = "a license that is not registered"
    elif sort == "support_until":
        dates = [(item["support_until"] is None, item["support_until"] or "") for item in items]
        problem = None if dates == sorted(dates) else "not in the order of support_until"
    else:
        # Text is in the database's collation (Czech puts "ch" after "h"): checked is that each
        # product, and each edition of a product, comes in one run.
        runs = [key for key, _ in itertools.groupby((item["product_name"], item["edition"]) for item in items)]
        products = [name for name, _ in itertools.groupby(name for name, _ in runs)]
        contiguous = len(runs) == len(set(runs)) and len(products) == len(set(products))
        problem = None if contiguous else "not in the order of the products"
    if problem:
        raise RuntimeError(f"customer {customer}, sort={sort}, every page by next: {problem}")
    return {"ms": times, "deep_cursor": last}


def list_session(
    client: LicenseClient, customer: str, deep: dict[str, str | None], samples: dict[str, list[float]]
) -> None:
    """One user's session of the list: the first page sorted by product and `NEXT_PAGES`
    pages by `next`; the same sorted by support; the last page of each sort (its cursor kept
    from the walk: a user who paged that far comes back to it); the CSV export."""
    for sort in SORTS:
        elapsed, body = client.page(customer, sort)
        samples["first page"].append(elapsed)
        for _ in range(NEXT_PAGES):
            if body["next"] is None:
                break
            elapsed, body = client.page(customer, sort, body["next"])
            samples["next page"].append(elapsed)
    for sort in SORTS:
        if deep[sort] is not None:
            elapsed, _ = client.page(customer, sort, deep[sort])
            samples["deep page"].append(elapsed)
    elapsed, _ = client.csv(customer)
    samples["csv"].append(elapsed)


def explain_licenses(
    url: str, secret: str, customer: str, sort: str, cursor: str | None = None, csv: bool = False
) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the licenses SQL licensing's view sends for this page (or
    for the CSV), captured from the service's own code answering the request in-process (so
    it is always the current query)."""
    from licensing.app import create_app
    from sqlalchemy import event

    from shared import auth
    from shared.auth import Principal
    from shared.config import Settings

    app = create_app(Settings(service="licensing", database_url=url, internal_auth_secret=secret))
    engine = app.extensions["database"].engine
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor_, statement, parameters, context, executemany):
        if "FROM licenses" in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        target = f"/api/v1/customers/{customer}/licenses{'.csv' if csv else ''}?sort={sort}"
        if not csv:
            target += f"&limit={PAGE_LIMIT}" + (f"&cursor={quote(cursor)}" if cursor else "")
        token = auth.issue(secret, "licensing", Principal(READER, kind="user"))
        answer = app.test_client().get(target, headers={auth.HEADER: token})
        if answer.status_code != 200 or not captured:
            return f"(no licenses statement captured: {answer.status_code})"
        statement, parameters = captured[-1]
        with engine.connect() as connection:
            with connection.connection.dbapi_connection.cursor() as raw:
                raw.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                return "\n".join(row[0] for row in raw.fetchall())
    finally:
        engine.dispose()


def measure_licenses(
    options: Options,
    log: Callable[[str], None] = print,
    *,
    sizes: LicenseSizes | None = None,
    sessions: int = SESSIONS,
    keep: bool = False,
    show_plans: bool = False,
) -> dict:
    sizes = sizes or LicenseSizes()
    split = cpu_split() if options.pin else None
    client_cpus = split[0] if split else None
    featured = {label: customer_number(cid) for label, cid in sizes.featured().items()}
    registered = {"scale": sizes.licenses, "baseline": sizes.baseline_licenses}
    kinds = (*PAGE_CLASSES, "csv")
    figures: dict = {"sizes": dataclasses.asdict(sizes), "customers": featured, "pinned": bool(split)}
    with contextlib.ExitStack() as stack:
        name, figures["load"] = stack.enter_context(licensing_database(sizes, keep, log))
        url = database_url(name, "postgresql+psycopg")
        with contextlib.ExitStack() as servers:
            # Our database, not a BenchSuite temp one: the suite "on SQLite" creates none, and
            # licensing is pointed at ours (its migrate step is then a no-op).
            suite = servers.enter_context(
                BenchSuite(
                    ["licensing"], dataclasses.replace(options, database="sqlite"), {"LICENSING_DATABASE_URL": url}
                )
            )
            secret = suite.secret
            client = LicenseClient(suite.web_url("licensing"), secret)
            servers.callback(client.close)
            with affinity(client_cpus):
                began = time.monotonic()
                # Warm-up, and the proof that the paging is right: every page of both sorts by
                # `next`, once, for both customers; the CSV once.
                walks = {
                    label: {sort: walk(client, featured[label], sort, registered[label]) for sort in SORTS}
                    for label in featured
                }
                for label in featured:
                    _, rows = client.csv(featured[label])
                    if rows != registered[label]:
                        raise RuntimeError(f"CSV of customer {featured[label]}: {rows} rows, not {registered[label]}")
                figures["warmup_seconds"] = time.monotonic() - began
                if options.verbose:
                    seconds = figures["warmup_seconds"]
                    log(f"  warm-up: every page of both sorts and the CSV, both customers, {seconds:.1f} s")
                deep = {label: {sort: walks[label][sort]["deep_cursor"] for sort in SORTS} for label in featured}
                samples = {label: {kind: [] for kind in kinds} for label in featured}
                for round_number in range(options.runs):
                    round_began = time.monotonic()
                    for index in range(sessions):
                        for label in list(featured) if index % 2 == 0 else list(reversed(featured)):
                            list_session(client, featured[label], deep[label], samples[label])
                    suite.check_alive()
                    if options.verbose:
                        pages = [x for kind in PAGE_CLASSES for x in samples["scale"][kind]]
                        log(
                            f"  round {round_number + 1}: {time.monotonic() - round_began:.0f} s, list pages so far "
                            f"p50 {percentile(pages, 0.5):.1f} ms, p95 {percentile(pages, 0.95):.1f} ms"
                        )
        figures["walk_ms"] = {label: {sort: walks[label][sort]["ms"] for sort in SORTS} for label in featured}
        figures["summary"] = {}
        for label in featured:
            pages = {kind: samples[label][kind] for kind in PAGE_CLASSES}
            figures["summary"][label] = summary(pages)
            figures["summary"][label]["csv"] = summary({"csv": samples[label]["csv"]})["csv"]
        figures["plans"] = {}
        if show_plans:
            # With the server stopped: the first page and the last page of each sort, and the CSV.
            cases = [(f"first page, {sort}", sort, None, False) for sort in SORTS]
            cases += [(f"deep page, {sort}", sort, deep["scale"][sort], False) for sort in SORTS if deep["scale"][sort]]
            cases.append(("csv, product", "product", None, True))
            for label, sort, cursor, csv in cases:
                text = explain_licenses(url, secret, featured["scale"], sort, cursor, csv)
                figures["plans"][label] = text
                log(f"  EXPLAIN ANALYZE, {label}, {sizes.licenses:,} licenses:")
                for line in text.splitlines():
                    log(f"    {line}")
    return figures


def licenses_part(
    options: Options,
    log: Callable[[str], None] = print,
    *,
    licenses: int = LICENSES,
    baseline_licenses: int = BASELINE_LICENSES,
    customers: int = CUSTOMERS,
    sessions: int = SESSIONS,
    keep: bool = False,
    show_plans: bool = False,
) -> tuple[list[Metric], list[str], dict]:
    sizes = LicenseSizes(licenses, baseline_licenses, customers)
    f = measure_licenses(options, log, sizes=sizes, sessions=sessions, keep=keep, show_plans=show_plans)
    scale, base = f["summary"]["scale"], f["summary"]["baseline"]
    metrics = [p95_against_target(f"license list p95, {licenses:,} licenses", scale["all"]["p95"])]
    for kind in PAGE_CLASSES:
        metrics.append(info(f"license list p95, {licenses:,} licenses, {kind}", scale[kind]["p95"], " ms"))
    metrics.append(info(f"license CSV export p95, {licenses:,} rows", scale["csv"]["p95"], " ms"))
    metrics.append(info(f"license list p95, {baseline_licenses:,} licenses (baseline)", base["all"]["p95"], " ms"))
    loaded = f["load"]
    notes = [
        f"{sessions} sessions × {options.runs} rounds per customer (each: first page + {NEXT_PAGES} by next in "
        f"both sorts, the last page of each, the CSV), {PAGE_LIMIT} a page, one connection, licensing's own port, "
        f"{'pinned (client | server)' if f['pinned'] else 'not pinned'}",
        (
            f"database: {loaded['licenses']:,} licenses of {loaded['customers']:,} customers, loaded in "
            f"{loaded['seconds']['total']:.0f} s ({loaded['size']})"
            if loaded
            else "database: kept database reused (no load)"
        ),
        f"ms; customer {f['customers']['scale']} ({licenses:,} registered licenses) | "
        f"customer {f['customers']['baseline']} ({baseline_licenses:,}, baseline): p50 / p95",
        f"{'class':14} {'n':>5} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}   | baseline",
    ]
    for kind in (*PAGE_CLASSES, "all", "csv"):
        s, b = scale[kind], base[kind]
        shown = "all pages" if kind == "all" else "csv (info)" if kind == "csv" else kind
        notes.append(
            f"{shown:14} {s['n']:5d} {s['p50']:8.1f} {s['p95']:8.1f} {s['p99']:8.1f} {s['max']:8.1f}   | "
            + (f"{b['p50']:.1f} / {b['p95']:.1f}" if b["n"] else "- (one page holds them all)")
        )
    for sort in SORTS:
        walked = f["walk_ms"]["scale"][sort]
        tail = walked[-10:]
        notes.append(
            f"warm-up walk by next, sort={sort}: {len(walked)} pages, page 1 {walked[0]:.1f} ms, "
            f"the last {len(tail)} pages median {percentile(tail, 0.5):.1f} ms"
        )
    return metrics, notes, f


def run(
    options: Options,
    log: Callable[[str], None] = print,
    parts: tuple[str, ...] = PARTS,
    *,
    license_options: dict | None = None,
    **forum_options,
) -> Result:
    """The parts asked for, in order; `forum_options` go to `forum_part`, `license_options`
    to `licenses_part`."""
    metrics: list[Metric] = []
    notes: list[str] = []
    details: dict = {}
    # `python -m bench` has no --keep: BENCH_SCALE_KEEP=1 keeps and reuses the data there too.
    keep_from_env = os.environ.get("BENCH_SCALE_KEEP") == "1"
    if "forum" in parts:
        forum_options["keep"] = forum_options.get("keep") or keep_from_env
        m, n, d = forum_part(options, log, **forum_options)
        metrics += m
        notes += n
        details["forum"] = d
    if "licenses" in parts:
        license_options = dict(license_options or {})
        license_options["keep"] = license_options.get("keep") or keep_from_env
        m, n, d = licenses_part(options, log, **license_options)
        metrics += m
        notes += n
        details["licenses"] = d
    return Result(NAME, metrics, notes, details)


def main(argv: list[str] | None = None) -> int:
    from bench import __main__ as runner

    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("parts", nargs="*", metavar="part", help=f"one of: {', '.join(PARTS)} (default: all)")
    parser.add_argument(
        "--runs", type=int, default=RUNS, help=f"rounds of the whole query mix / of the sessions (default {RUNS})"
    )
    parser.add_argument("--posts", type=int, default=POSTS, help="posts in the big database")
    parser.add_argument("--baseline-posts", type=int, default=BASELINE_POSTS, help="posts in the baseline database")
    parser.add_argument("--per-class", type=int, default=PER_CLASS, help="queries per class in the mix")
    parser.add_argument("--licenses", type=int, default=LICENSES, help="registered licenses of the big customer")
    parser.add_argument(
        "--baseline-licenses", type=int, default=BASELINE_LICENSES, help="registered licenses of the baseline customer"
    )
    parser.add_argument("--customers", type=int, default=CUSTOMERS, help="other customers (1-50 licenses each)")
    parser.add_argument("--sessions", type=int, default=SESSIONS, help="list sessions per customer and round")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the loaded databases")
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE the slowest search of each class / the list's queries"
    )
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
        license_options={
            "licenses": args.licenses,
            "baseline_licenses": args.baseline_licenses,
            "customers": args.customers,
            "sessions": args.sessions,
            "keep": args.keep,
            "show_plans": args.explain,
        },
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
