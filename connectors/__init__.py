"""Connectors, one sub-package per PMS; installed as vitalsync_connectors."""
