"""Shared ground for every stage: config, errors, database, logging, clock."""
