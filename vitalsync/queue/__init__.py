"""Stage 4: the outbox. Messages with their idempotency keys, status history and the decision trace."""
