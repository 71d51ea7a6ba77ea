"""Stage 1: the connector contract. What a PMS connector yields, and the guards around a sync."""
