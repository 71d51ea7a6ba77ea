"""Stage 6: delivery events and patient replies move messages through the lifecycle."""
