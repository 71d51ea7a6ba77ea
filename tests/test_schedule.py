"""The send window and quiet hours, read in the right time zones."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from vitalsync.core.config import Config, LocationConfig
from vitalsync.rules.schedule import base_window

NY, LA, CHICAGO = ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles"), ZoneInfo("America/Chicago")
MONDAY = date(2026, 3, 2)


def at(hour: int, minute: int = 0, day: date = MONDAY, zone: ZoneInfo = NY) -> datetime:
    return datetime.combine(day, time(hour, minute), zone)


def test_the_window_allows_clinic_hours_on_clinic_days():
    window = base_window(Config())
    assert window.allows(at(9), NY)
    assert window.allows(at(18, 59), NY)
    assert not window.allows(at(8, 59), NY)
    assert not window.allows(at(19), NY)
    assert not window.allows(at(12, day=date(2026, 3, 8)), NY), "Sunday is not a sending day"


def test_quiet_hours_are_read_in_the_recipients_zone():
    window = base_window(Config())
    assert not window.allows(at(10), LA), "10:00 in New York is 7:00 in Los Angeles"
    assert window.next_allowed(at(10), LA) == at(9, zone=LA)


def test_a_message_due_on_saturday_evening_waits_for_monday():
    window = base_window(Config())
    assert window.next_allowed(at(19, 30, day=date(2026, 3, 7)), NY) == at(9, day=date(2026, 3, 9))


def test_holidays_have_no_messages():
    window = base_window(Config.model_validate({"schedule": {"holidays": [MONDAY]}}))
    assert window.next_allowed(at(10), NY) == at(9, day=date(2026, 3, 3))


def test_a_location_override_changes_hours_and_zone():
    config = Config(locations={"2": LocationConfig(timezone="America/Chicago", window_start=time(10, 0))})
    window = base_window(config, "2", "America/New_York")
    assert window.tz == CHICAGO
    assert window.next_allowed(at(9, zone=CHICAGO), CHICAGO) == at(10, zone=CHICAGO)


def test_the_pms_zone_of_a_location_is_used_without_an_override():
    assert base_window(Config(), "7", "America/Chicago").tz == CHICAGO


def test_the_last_allowed_moment_before_an_early_appointment_is_the_evening_before():
    window = base_window(Config())
    assert window.last_allowed_before(at(8, day=date(2026, 3, 3)), NY) == at(18, 59)
