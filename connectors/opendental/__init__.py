"""The opendental connector (in progress)."""
