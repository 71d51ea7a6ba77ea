"""The csv connector (in progress)."""
