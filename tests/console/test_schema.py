"""The console's tables and index come from migration 0003_console exactly as the models declare them."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from vitalsync.app.runtime import open_database
from vitalsync.app.schema import metadata


def test_the_migrations_build_exactly_the_models(config):
    engine = open_database(config)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert differences == []
