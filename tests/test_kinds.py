"""Message kinds load from TOML, fail loudly with file and line, and render short, safe messages."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from vitalsync.core.config import STOCK_KINDS
from vitalsync.core.errors import ConfigError
from vitalsync.core.vocab import AppointmentStatus, Channel
from vitalsync.mirror.tables import Appointment, Location, Patient, Pickup, Provider, Recall
from vitalsync.rules.kinds import Trigger, load_kinds, parse_offset
from vitalsync.rules.render import build_context, render, sms_segments

TZ = ZoneInfo("America/New_York")
START = datetime(2026, 11, 24, 14, 30, tzinfo=timezone.utc)  # 9:30 AM in New York
MAIN = Location(key="MAIN", name="Main Street", timezone="America/New_York", phone="(555) 010-2000")
RIVERA = Provider(key="P1", name="Dr. Rivera")
ANA = Patient(key="p1", first_name="Ana", last_name="Lopez", mobile="+15550100001")
LUIS = Patient(key="p2", first_name="Luis", last_name="Lopez", mobile="+15550100001")
README = Path(__file__).parents[1] / "message_kinds" / "README.md"


def appointment(key="a1", patient=ANA, start=START, **extra) -> Appointment:
    return Appointment(key=key, patient_key=patient.key, location_key="MAIN", provider_key="P1", start=start,
                       end=start + timedelta(minutes=45), **extra)


def context(language="en", members=((ANA, START),)) -> dict:
    return build_context(
        clinic_name="Bright Smiles Dental", clinic_phone="(555) 010-1000", patient=ANA, language=language, tz=TZ,
        appointments=[(appointment(f"a{n}", p, s, previous_start=s - timedelta(hours=1)), MAIN, RIVERA, p)
                      for n, (p, s) in enumerate(members)],
        recall=Recall(key="r1", patient_key="p1", due=date(2026, 12, 8)),
        pickup=Pickup(key="k1", patient_key="p1", location_key="MAIN", ready_at=START), pickup_location=MAIN)


def site_kind(tmp_path: Path, text: str, name: str = "custom") -> Path:
    (tmp_path / f"{name}.toml").write_text(text, encoding="utf-8")
    return tmp_path


MINIMAL = '''title = "Custom"
description = "A test kind."
trigger = "appointment_start"
offsets = ["-1d"]
channels = ["sms"]

[templates.sms]
en = "{{ clinic.name }}: {{ patient.first_name }}, see you {{ appointment.when }}."
'''


def load_error(tmp_path: Path, text: str, name: str = "custom") -> str:
    with pytest.raises(ConfigError) as caught:
        load_kinds([name], site_kind(tmp_path, text, name))
    return str(caught.value)


def test_every_stock_kind_loads():
    kinds = load_kinds(STOCK_KINDS)
    assert sorted(kinds) == sorted(STOCK_KINDS)
    assert kinds["appointment_reminder"].offsets == [timedelta(days=-2), timedelta(hours=-3)]
    assert kinds["appointment_reminder"].group_family
    assert kinds["appointment_cancellation"].filters.statuses == [AppointmentStatus.CANCELLED]
    assert kinds["product_pickup"].trigger is Trigger.PICKUP_READY
    assert kinds["office_closed"].trigger is Trigger.MANUAL


def test_a_manual_kind_cannot_go_before_staff_start_it(tmp_path):
    text = MINIMAL.replace('trigger = "appointment_start"', 'trigger = "manual"')
    assert "a manual kind's offsets count from the moment staff start" in load_error(tmp_path, text)
    assert load_kinds(["custom"], site_kind(tmp_path, text.replace('"-1d"', '"0m"')))["custom"].trigger is Trigger.MANUAL


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("name", STOCK_KINDS)
def test_every_stock_kind_renders_on_every_channel_in_english_and_spanish(name, language):
    kind = load_kinds([name])[name]
    for channel in kind.channels:
        rendered = render(kind, channel, language, context(language))
        assert rendered.body.startswith(("Bright Smiles Dental", "Hello", "Hola"))
        assert "Lopez" not in rendered.body
        assert not re.search(r"\b(reply|responda)\s+cancel", rendered.body, re.IGNORECASE)
        assert (rendered.subject is not None) is (channel is Channel.EMAIL)
        if kind.asks_reply and channel is Channel.SMS:
            assert ("Reply C to confirm" if language == "en" else "Responda SI para confirmar") in rendered.body


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("family", [False, True])
def test_no_stock_kind_runs_two_sentences_together(language, family):
    """A block tag eats the line break after it; the next sentence must still start after a space."""
    members = ((ANA, START), (LUIS, START + timedelta(minutes=30))) if family else ((ANA, START),)
    for name, kind in load_kinds(STOCK_KINDS).items():
        for channel in kind.channels:
            body = render(kind, channel, language, context(language, members)).body
            assert not re.search(r"[a-z)][.!?][A-ZÁÉÍÓÚ¿¡]", body), (name, channel, body)


def test_dates_and_times_are_local_and_in_the_patients_language():
    en, es = context("en")["appointment"], context("es")["appointment"]
    assert (en["date"], en["time"], en["weekday"]) == ("Tuesday, November 24", "9:30 AM", "Tuesday")
    assert (es["date"], es["time"]) == ("martes, 24 de noviembre", "9:30")
    assert en["previous_time"] == "8:30 AM"


def test_a_family_message_lists_every_member():
    kind = load_kinds(["appointment_reminder"])["appointment_reminder"]
    family = context(members=((ANA, START), (LUIS, START + timedelta(hours=1))))
    sms = render(kind, Channel.SMS, "en", family).body
    assert "1) Ana 9:30 AM" in sms and "2) Luis 10:30 AM" in sms and "Reply C to confirm all" in sms
    assert "C1 N2" in sms  # the grammar for answering one member (status.replies.parse_reply)
    assert "C1 N2" in render(kind, Channel.SMS, "es", family).body
    assert "C1 N2" in render(kind, Channel.EMAIL, "en", family).body
    for channel in (Channel.EMAIL, Channel.VOICE):
        assert all(name in render(kind, channel, "en", family).body for name in ("Ana", "Luis"))


def test_an_english_reminder_for_one_appointment_is_one_sms_segment():
    kind = load_kinds(["appointment_reminder"])["appointment_reminder"]
    assert sms_segments(render(kind, Channel.SMS, "en", context()).body) == 1


def test_a_missing_language_falls_back_to_english():
    kind = load_kinds(["recall"])["recall"]
    assert render(kind, Channel.SMS, "vi", context("en")).body == render(kind, Channel.SMS, "en", context("en")).body


def test_a_regional_language_uses_its_base_language_template():
    kind = load_kinds(["recall"])["recall"]
    assert render(kind, Channel.SMS, "es-MX", context("es-MX")).body.startswith("Bright Smiles Dental: Ana, ya puede")


def test_an_unknown_language_code_formats_dates_in_english():
    assert context("Spanish")["appointment"]["date"] == "Tuesday, November 24"


def test_html_email_values_are_escaped():
    kind = load_kinds(["appointment_reminder"])["appointment_reminder"]
    ctx = context() | {"clinic": {"name": "A<b>C", "phone": ""}}
    rendered = render(kind, Channel.EMAIL, "en", ctx)
    assert "A&lt;b&gt;C" in rendered.html and "A<b>C" in rendered.body


def test_an_unknown_template_field_names_the_file_line_and_field(tmp_path):
    text = MINIMAL.replace("{{ patient.first_name }}", "{{ patient.last_name }}")
    message = load_error(tmp_path, text)
    assert "custom.toml:8:" in message and "templates.sms.en" in message and "patient.last_name" in message


def test_an_error_in_a_second_language_points_at_its_own_line(tmp_path):
    text = MINIMAL + 'es = "{{ clinic.name }}: {{ patient.first_name }}, {{ appointment.cuando }}."\n'
    assert "custom.toml:9: templates.sms.es: unknown field 'appointment.cuando'" in load_error(tmp_path, text)


def test_a_loop_variable_only_has_the_fields_of_a_family_member(tmp_path):
    text = MINIMAL.replace("see you", "{% for m in appointments %}{{ m.first_name }} {{ m.diagnosis }}{% endfor %}")
    assert "'m.diagnosis'" in load_error(tmp_path, text)


def test_a_field_of_another_trigger_is_unknown(tmp_path):
    assert "recall.due_date" in load_error(tmp_path, MINIMAL.replace("appointment.when", "recall.due_date"))


def test_a_template_syntax_error_names_the_file_and_line(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace("{{ appointment.when }}", "{{ appointment.when }"))
    assert re.search(r"custom\.toml:8: templates\.sms\.en: template syntax error", message)


def test_a_bad_offset_names_offsets_and_the_allowed_form(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace('"-1d"', '"-2x"'))
    assert "custom.toml:4: offsets:" in message and "'-2d'" in message


def test_an_unknown_key_is_named(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace('channels = ["sms"]', 'channels = ["sms"]\ncolour = "red"'))
    assert "colour: unknown key" in message


def test_a_listed_channel_without_an_english_template_is_an_error(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace('["sms"]', '["sms", "voice"]') + '[templates.voice]\nes = "Hola"\n')
    assert "templates.voice.en: missing" in message


def test_a_toml_syntax_error_names_the_file(tmp_path):
    assert "custom.toml: not valid TOML" in load_error(tmp_path, 'title = "unfinished\n')


def test_an_unknown_enabled_kind_is_named_with_the_available_ones():
    with pytest.raises(ConfigError, match="unknown kind 'reminders'.*appointment_reminder"):
        load_kinds(["reminders"])


def test_a_site_file_replaces_the_stock_kind(tmp_path):
    kinds = load_kinds(["recall", "appointment_reminder"], site_kind(tmp_path, MINIMAL, "appointment_reminder"))
    assert kinds["appointment_reminder"].title == "Custom"
    assert kinds["appointment_reminder"].source == tmp_path / "appointment_reminder.toml"
    assert kinds["recall"].source.name == "recall.toml" and kinds["recall"].source.parent != tmp_path


def test_the_worked_example_in_the_readme_loads(tmp_path):
    example = re.search(r"### Worked example\n\n```toml\n(.*?)```", README.read_text(), re.DOTALL).group(1)
    kind = load_kinds(["example"], site_kind(tmp_path, example, "example"))["example"]
    assert kind.filters.locations == ["MAIN"]


@pytest.mark.parametrize("text, offset", [
    ("-2d", timedelta(days=-2)), ("+30m", timedelta(minutes=30)), ("0m", timedelta(0)), ("+1w", timedelta(weeks=1)),
    ("3h", timedelta(hours=3)),
])
def test_offsets_read_as_sign_number_unit(text, offset):
    assert parse_offset(text) == offset


def test_filters_let_empty_lists_through_and_default_to_scheduled():
    kind = load_kinds(["appointment_reminder"])["appointment_reminder"]
    assert kind.filters.matches(appointment())
    assert not kind.filters.matches(appointment(status=AppointmentStatus.CANCELLED))


@pytest.mark.parametrize("text, segments", [
    ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("é ñ ü à" + "a" * 153, 1),  # all in the GSM-7 basic set
    ("€" * 80, 1), ("€" * 81, 2),  # extension characters take two septets
    ("ó" + "a" * 69, 1), ("ó" + "a" * 70, 2),  # ó is not GSM-7: UCS-2, 70 a segment
    ("\N{THUMBS UP SIGN}" * 35, 1), ("\N{THUMBS UP SIGN}" * 36, 2),  # an emoji is two UTF-16 units
])
def test_sms_segments_count_gsm7_and_ucs2(text, segments):
    assert sms_segments(text) == segments
