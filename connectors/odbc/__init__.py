"""The odbc connector (in progress)."""
