"""Stage 2: the mirror, a local copy of the PMS's rows, refreshed by ``refresh_once``."""
