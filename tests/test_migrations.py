"""Each component's Alembic history builds, on PostgreSQL and SQLite, exactly the schema its
models describe (so a model change without a migration fails here)."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared import memberships, messaging, migrations, throttle
from shared.db import make_engine

COMPONENTS = ("identity", "licensing", "distribution", "forum", "gateway")


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
@pytest.mark.parametrize("component", COMPONENTS)
def test_migrations_match_the_models(component, backend, new_database, tmp_path):
    url = new_database(component) if backend == "postgresql" else f"sqlite:///{tmp_path / component}.db"
    migrations.upgrade(component, url)
    migrations.upgrade(component, url)  # a second run is a no-op, as at every restart
    metadata = [importlib.import_module(f"{component}.models").Base.metadata]
    if component != "gateway":
        metadata.append(messaging.metadata)
    if component in ("identity", "licensing", "distribution"):
        metadata.append(throttle.metadata)
    if component in ("licensing", "distribution"):
        metadata.append(memberships.metadata)
    engine = make_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert differences == []
