"""The Open Dental connector: its MariaDB/MySQL database, read-only, incremental by DateTStamp."""

from vitalsync_connectors.opendental.connector import OpenDentalConnector

__all__ = ["OpenDentalConnector"]
