"""The composition root: builds the stages from a config and runs them (daemon, demo, reports)."""
