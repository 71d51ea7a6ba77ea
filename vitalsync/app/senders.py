"""The senders a config asks for: the in-memory fake, or Twilio (SMS, voice) and SendGrid (email)."""

from __future__ import annotations

from vitalsync.core.clock import Clock
from vitalsync.core.config import Config
from vitalsync.core.errors import ConfigError
from vitalsync.core.secrets import read_secret
from vitalsync.dispatch.fake import FakeSender
from vitalsync.dispatch.sender import Sender

WEBHOOKS = {"sms_status": "/webhooks/twilio/sms/status", "voice_status": "/webhooks/twilio/voice/status",
            "voice_gather": "/webhooks/twilio/voice/gather"}


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
                         base_url=twilio.base_url, timeout=twilio.timeout),
        "email": SendGridEmail(api_key, sendgrid.from_email, sendgrid.from_name or None, base_url=sendgrid.base_url,
                               timeout=sendgrid.timeout),
    }
    if twilio.from_number:  # calls need a number; a messaging service only sends texts
        senders["voice"] = TwilioVoice(twilio.account_sid, token, from_number=twilio.from_number,
                                       gather_url=public + WEBHOOKS["voice_gather"],
                                       status_callback=public + WEBHOOKS["voice_status"],
                                       base_url=twilio.base_url, timeout=twilio.timeout)
    return senders
