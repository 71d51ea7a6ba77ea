"""Stage 5: claims due messages, re-checks them against the mirror, renders and sends them."""
