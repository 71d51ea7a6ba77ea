"""The CSV drop-folder connector: nightly export files of a PMS, with a configurable column mapping."""

from vitalsync_connectors.csv.connector import CsvConnector

__all__ = ["CsvConnector"]
