"""Each component's Alembic history builds, on PostgreSQL and SQLite, exactly the schema its
models describe (so a model change without a migration fails here)."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared import idempotency, mail, memberships, messaging, migrations, throttle
from shared.db import make_engine

COMPONENTS = ("identity", "licensing", "distribution", "forum", "gateway")
MAIL_SENDERS = ("identity", "forum")


def _not_search_index(obj, name, type_, reflected, compare_to) -> bool:
    """The forum's full-text index is per dialect (forum/search.py) and outside its models:
    FTS5 tables on SQLite, a tsvector column with its GIN index on PostgreSQL."""
    return not (
        (type_ == "table" and name.startswith("post_search"))
        or (type_ == "column" and name == "search_vector")
        or (type_ == "index" and name == "ix_posts_search")
    )  # the components whose migrations create shared.mail's outgoing_mail


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
@pytest.mark.parametrize("component", COMPONENTS)
def test_migrations_match_the_models(component, backend, new_database, tmp_path):
    url = new_database(component) if backend == "postgresql" else f"sqlite:///{tmp_path / component}.db"
    migrations.upgrade(component, url)
    migrations.upgrade(component, url)  # a second run is a no-op, as at every restart
    metadata = [importlib.import_module(f"{component}.models").Base.metadata]
    if component != "gateway":
        metadata.append(messaging.metadata)
    if component in ("identity", "licensing", "distribution", "forum"):
        metadata.append(throttle.metadata)
        metadata.append(idempotency.metadata)
    if component in ("licensing", "distribution"):
        metadata.append(memberships.metadata)
    if component in MAIL_SENDERS:
        metadata.append(mail.metadata)
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": _not_search_index})
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == []
