"""[sender] type = "providers": reminders leave through the real twilio and sendgrid clients."""


import pytest

from sqlmodel import select

from tests.providers import provider_settings
from tests.test_pipeline import book, ny, open_practice, patient
from vitalsync.app.senders import build_senders
from vitalsync.core.config import load_config
from vitalsync.core.db import session
from vitalsync.core.errors import ConfigError
from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_twilio import FakeTwilio
from vitalsync.queue.tables import Message


def providers_config(write_config, twilio: FakeTwilio, sendgrid: FakeSendGrid, tmp_path):
    return load_config(write_config(provider_settings(tmp_path, twilio, sendgrid), name="providers.toml"))


def test_reminders_go_out_through_twilio_and_sendgrid(runtime, connector, write_config, tmp_path):
    with FakeTwilio() as twilio, FakeSendGrid().start() as sendgrid:
        config = providers_config(write_config, twilio, sendgrid, tmp_path)
        runtime.senders = build_senders(config, runtime.clock, runtime.sender)
        open_practice(connector, patient("1", "Ann"), patient("2", "Ben", mobile=None))
        book(connector, "A1", "1", ny(4, 10))
        book(connector, "A2", "2", ny(4, 11))
        runtime.sync_once()
        runtime.plan_once()
        runtime.clock.set(ny(2, 12))
        runtime.dispatch_once()
        with session(runtime.engine) as db:
            sent = {m.appointment_key: m for m in db.exec(select(Message).where(Message.status == "sent"))}
        assert sent["A1"].channel == "sms" and sent["A1"].provider_ref in twilio.messages
        assert sent["A2"].channel == "email" and sent["A2"].provider_ref
        assert any(r.path.endswith("/v3/mail/send") for r in sendgrid.requests)


def test_providers_without_their_settings_is_a_config_error_naming_the_keys(write_config, clock):
    config = load_config(write_config('[sender]\ntype = "providers"\n'))
    with pytest.raises(ConfigError) as error:
        build_senders(config, clock, None)
    assert "twilio.account_sid" in str(error.value) and "webhooks.public_url" in str(error.value)
