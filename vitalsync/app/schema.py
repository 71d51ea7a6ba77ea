"""Every table of every stage, in one metadata, and the migrations that build it."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine
from sqlmodel import SQLModel

import vitalsync.mirror.tables  # noqa: F401  (registers the tables)
import vitalsync.queue.tables  # noqa: F401
import vitalsync.status.tables  # noqa: F401
import vitalsync.core.leases  # noqa: F401
import vitalsync.console.tables  # noqa: F401

metadata = SQLModel.metadata


def _alembic(connection) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(files("vitalsync.app") / "migrations"))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (a no-op when it is there already)."""
    with engine.begin() as connection:
        command.upgrade(_alembic(connection), "heads")


def new_revision(engine: Engine, message: str) -> None:
    """Developers: write a migration for the difference between the models and the database."""
    with engine.begin() as connection:
        command.revision(_alembic(connection), message=message, autogenerate=True)
