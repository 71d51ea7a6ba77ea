"""The demo connector: a synthetic, deterministic two-office dental practice."""

from vitalsync_connectors.demo.connector import DemoConnector

__all__ = ["DemoConnector"]
