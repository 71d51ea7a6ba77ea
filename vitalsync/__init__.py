"""vitalsync: a practice-management sync and patient messaging daemon.

The stages, in flow order (each sub-package imports only from the ones before it and ``core``):

1. ``sync``     — the connector contract: what a PMS connector yields, and the safety guards.
2. ``mirror``   — the local copy of PMS rows; ``refresh_once`` applies a connector's records.
3. ``rules``    — message kinds × mirror rows × now → planned messages and decisions (pure).
4. ``queue``    — the outbox: messages, their status history and the decision trace.
5. ``dispatch`` — claims due messages, re-checks them, renders and hands them to a sender.
6. ``status``   — delivery events and patient replies move messages through the lifecycle.

``app`` composes the stages (daemon, demo, migrations, reports); ``cli`` is the command line.
"""

__version__ = "0.1.0"
