"""Alembic migrations of the mirror and queue schema, applied on start."""
