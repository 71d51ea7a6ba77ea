"""Serving the front desk's console next to the daemon (``[console] enabled``), or over the demo,
and the staff alerts it sends."""

from __future__ import annotations

from vitalsync.console.alerts import AlertReport, alerts_once
from vitalsync.console.web import console_app
from vitalsync.core.clock import Clock
from vitalsync.core.config import Config
from vitalsync.core.errors import ConfigError, PersonMustAct
from vitalsync.core.secrets import read_secret
from vitalsync.status.webhooks import serve


def start_console(config: Config, engine, clock: Clock, *, listen: str | None = None, force: bool = False):
    """Serve the console on [console] listen in a thread; the started server, or None when not enabled."""
    if not (config.console.enabled or force):
        return None
    secret = read_secret("console_secret_key", config.console.secret_key_file, key="console.secret_key_file",
                         config_path=config.path, required=True)
    if len(secret) < 32:
        raise ConfigError(f"{config.path}: console.secret_key_file: the secret is too short (32 characters at least)")
    listen = listen or config.console.listen
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise ConfigError(f"{config.path}: console.listen: expected host:port, got {listen!r}")
    try:
        return serve(console_app(engine, config, clock, secret), host or "127.0.0.1", int(port))
    except RuntimeError:
        raise PersonMustAct(f"the console cannot listen on {listen} (in use?); change [console] listen") from None


def alert_step(runtime):
    """The daemon's alerts step: through the email sender, or with [sender] type = "fake" a fake
    that only records (a simulated patient must not 'reply' to a staff email)."""
    from vitalsync.dispatch.fake import FakeSender

    if runtime.config.sender.type == "fake" or not runtime.senders or "email" not in runtime.senders:
        sender = FakeSender(clock=runtime.clock, simulate=False)
    else:
        sender = runtime.senders["email"]

    def step() -> AlertReport:
        return alerts_once(runtime.engine, sender, runtime.config, runtime.clock.now())
    return step
