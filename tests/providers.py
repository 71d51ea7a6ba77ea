"""Config text the provider tests share: the fakes' settings, and a send window that is always open."""

from pathlib import Path

from vitalsync.dispatch.fake_sendgrid import FakeSendGrid
from vitalsync.dispatch.fake_twilio import FakeTwilio

ALWAYS_OPEN = """
[schedule]
window_start = 00:00:00
window_end = 23:59:00
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
quiet_start = 23:59:00
quiet_end = 00:00:00
"""
#: more [schedule] keys, right after ALWAYS_OPEN: no per-address spacing or frequency cap, for tests
#: that make a whole practice's messages due at once and count that each is sent
NO_LIMITS = """\
spacing_minutes = 0
max_per_day = 1000
max_per_week = 1000
"""


def provider_settings(folder: Path, twilio: FakeTwilio, sendgrid: FakeSendGrid, *,
                      public_url: str = "http://127.0.0.1:9", listen: str | None = None) -> str:
    """The [sender], [twilio], [sendgrid] and [webhooks] sections for the fakes; secrets go to files."""
    (folder / "token").write_text(twilio.auth_token)
    (folder / "key").write_text(sendgrid.api_key)
    for secret in ("token", "key"):
        (folder / secret).chmod(0o600)  # a secret others can read is refused
    return f"""
[sender]
type = "providers"
[twilio]
account_sid = "{twilio.account_sid}"
auth_token_file = "token"
from_number = "+15005550006"
base_url = "{twilio.base_url}"
timeout = 5
messages_per_second = 10000
calls_per_second = 10000
[sendgrid]
api_key_file = "key"
from_email = "clinic@example.org"
base_url = "{sendgrid.url}"
webhook_public_key = "{sendgrid.public_key}"
messages_per_second = 10000
[webhooks]
public_url = "{public_url}"
""" + (f'listen = "{listen}"\n' if listen else "")
