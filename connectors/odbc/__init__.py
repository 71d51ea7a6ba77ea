"""The generic ODBC connector: vendor views (Dentrix, Eaglesoft) read with one SQL query per entity."""

from vitalsync_connectors.odbc.connector import OdbcConnector

__all__ = ["OdbcConnector"]
