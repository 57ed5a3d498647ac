"""Alembic, one migration history per service, driven from code.

Each service keeps its revisions in `<package>/migrations/versions`; its `env.py` is two
lines that call `run_env`. `upgrade(package, url)` is what `python -m <service> migrate` and
the tests call.
"""

from __future__ import annotations

from importlib import resources

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData

from shared import messaging
from shared.db import make_engine


def alembic_config(package: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files(package) / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(package: str, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(package, url), revision)


def run_env(service_metadata: MetaData, with_messaging: bool = True, extra_metadata: tuple[MetaData, ...] = ()) -> None:
    """The body of every service's migrations/env.py (online mode only: we always have a DB)."""
    url = context.config.get_main_option("sqlalchemy.url")
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=[service_metadata, messaging.metadata, *extra_metadata]
            if with_messaging
            else service_metadata,
            render_as_batch=engine.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def main(package: str, argv: list[str] | None = None) -> None:
    """`python -m <service> migrate` for services with no other operator commands."""
    import argparse

    from shared.config import Settings

    parser = argparse.ArgumentParser(prog=f"python -m {package}")
    parser.add_argument("command", choices=["migrate"], help="apply the database migrations")
    parser.parse_args(argv)
    upgrade(package, Settings.from_env(package).database_url)
