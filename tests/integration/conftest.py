"""Databases of one component each, migrated by its own migrations, for the tests here."""

from __future__ import annotations

import pytest

from shared import migrations
from shared.db import Database


def migrated(new_database, component: str) -> Database:
    url = new_database(component)
    migrations.upgrade(component, url)
    return Database(url)


@pytest.fixture
def identity_db(new_database):
    database = migrated(new_database, "identity")
    yield database
    database.dispose()


@pytest.fixture
def licensing_db(new_database):
    database = migrated(new_database, "licensing")
    yield database
    database.dispose()
