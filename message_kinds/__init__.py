"""The stock message kinds, as data."""
