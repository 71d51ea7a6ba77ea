"""The senders a config asks for: the in-memory fake, or Twilio (SMS, voice) and SendGrid (email)."""

from __future__ import annotations

from vitalsync.core.clock import Clock
from vitalsync.core.config import Config
from vitalsync.core.errors import ConfigError, PersonMustAct
from vitalsync.core.secrets import read_secret
from vitalsync.dispatch.fake import FakeSender
from vitalsync.dispatch.pace import Pacer
from vitalsync.dispatch.sender import Sender

WEBHOOKS = {"sms_status": "/webhooks/twilio/sms/status", "sms_inbound": "/webhooks/twilio/sms/inbound",
            "voice_status": "/webhooks/twilio/voice/status", "voice_gather": "/webhooks/twilio/voice/gather",
            "sendgrid_events": "/webhooks/sendgrid/events"}


def build_senders(config: Config, clock: Clock, fake: FakeSender) -> dict[str, Sender]:
    """Channel name to sender. Missing provider settings are config errors naming the key."""
    if config.sender.type == "fake":
        return {channel: fake for channel in fake.channels}
    from vitalsync.dispatch.sendgrid_email import SendGridEmail
    from vitalsync.dispatch.twilio_sms import TwilioSms
    from vitalsync.dispatch.twilio_voice import TwilioVoice

    twilio, sendgrid, hooks = config.twilio, config.sendgrid, config.webhooks
    problems = [f"{config.path}: {key}: required with [sender] type = \"providers\"" for key, value in (
        ("twilio.account_sid", twilio.account_sid), ("twilio.from_number", twilio.from_number or twilio.messaging_service_sid),
        ("sendgrid.from_email", sendgrid.from_email), ("webhooks.public_url", hooks.public_url)) if not value]
    if problems:
        raise ConfigError(problems)
    token = read_secret("twilio_auth_token", twilio.auth_token_file, key="twilio.auth_token_file",
                        config_path=config.path, required=True)
    api_key = read_secret("sendgrid_api_key", sendgrid.api_key_file, key="sendgrid.api_key_file",
                          config_path=config.path, required=True)
    public = hooks.public_url.rstrip("/")
    number = {"from_number": twilio.from_number} if twilio.from_number else {"messaging_service_sid": twilio.messaging_service_sid}
    senders = {
        "sms": TwilioSms(twilio.account_sid, token, **number, status_callback=public + WEBHOOKS["sms_status"],
                         base_url=twilio.base_url, timeout=twilio.timeout, pacer=Pacer(twilio.messages_per_second)),
        "email": SendGridEmail(api_key, sendgrid.from_email, sendgrid.from_name or None, base_url=sendgrid.base_url,
                               timeout=sendgrid.timeout, pacer=Pacer(sendgrid.messages_per_second)),
    }
    if twilio.from_number:  # calls need a number; a messaging service only sends texts
        senders["voice"] = TwilioVoice(twilio.account_sid, token, from_number=twilio.from_number,
                                       gather_url=public + WEBHOOKS["voice_gather"],
                                       status_callback=public + WEBHOOKS["voice_status"],
                                       base_url=twilio.base_url, timeout=twilio.timeout,
                                       pacer=Pacer(twilio.calls_per_second))
    return senders


def start_webhooks(config: Config, engine, clock: Clock):
    """Serve the providers' webhooks on [webhooks] listen (providers only); returns the server or None."""
    if config.sender.type != "providers":
        return None
    from vitalsync.status.webhooks import serve, webhook_app

    token = read_secret("twilio_auth_token", config.twilio.auth_token_file, key="twilio.auth_token_file",
                        config_path=config.path, required=True)
    app = webhook_app(engine, config, clock, twilio_auth_token=token,
                      sendgrid_public_key=config.sendgrid.webhook_public_key or None,
                      public_url=config.webhooks.public_url.rstrip("/"))
    host, _, port = config.webhooks.listen.rpartition(":")
    if not port.isdigit():
        raise ConfigError(f"{config.path}: webhooks.listen: expected host:port, got {config.webhooks.listen!r}")
    try:
        return serve(app, host or "127.0.0.1", int(port))
    except RuntimeError:
        raise PersonMustAct(f"the webhook receiver cannot listen on {config.webhooks.listen} (in use?); "
                            "change [webhooks] listen") from None
