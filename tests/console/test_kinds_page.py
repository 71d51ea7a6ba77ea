"""The Message kinds page (issue 11, point 13, the console half): admin and front desk read each
enabled kind's trigger, offsets, channels and filters, and its templates rendered for a synthetic
sample patient in every language it has; a provider may not open it; no real patient shows."""

from __future__ import annotations

import html

from vitalsync.console.kinds_page import offset_text
from vitalsync.rules.kinds import parse_offset


def test_the_front_desk_reads_every_kind_rendered_for_the_sample_patient(as_user, practice):
    page = as_user("fran").get("/kinds")
    assert page.status_code == 200
    text = html.unescape(page.text)
    for name, kind in practice.kinds.items():
        assert f'id="kind-{name}"' in text and kind.title in text
    reminder = practice.kinds["appointment_reminder"]
    assert "2 days before, 3 hours before the appointment's start" in text
    assert "sms, then email, then voice" in text
    assert "stops once the patient confirmed or declined" in text
    # every template of the reminder, each language, rendered (no Jinja left) for Alex, not a real patient
    section = text[text.index('id="kind-appointment_reminder"'):text.index("</section>", text.index('id="kind-appointment_reminder"'))]
    languages = {(c, lang) for c in ("sms", "email", "voice") for lang in getattr(reminder.templates, c)}
    assert len(languages) >= 6 and ("sms", "es") in languages
    rows = section.count("<tr><td>")
    assert rows == 2 * len(languages)  # single and family, since reminders group families
    assert "Alex" in section and "Sam" in section and "{{" not in section
    assert "Test Dental" in section  # the clinic's own name from the config
    for patient in ("Ann ", "Ben ", "Cal ", "Doe", "+1212"):  # the practice's real patients
        assert patient not in text


def test_an_admin_may_open_it_and_a_provider_may_not(as_user, client):
    assert as_user("ada").get("/kinds").status_code == 200
    client.post("/logout", data={})
    client.cookies.clear()
    assert as_user("nora").get("/kinds").status_code == 403


def test_the_page_is_in_the_navigation_of_those_who_may_open_it(as_user):
    assert 'href="/kinds"' in as_user("fran").get("/today").text


def test_offsets_read_as_people_say_them():
    assert [offset_text(parse_offset(o)) for o in ("-2d", "-3h", "+30m", "0m", "+1w", "-90m")] == [
        "2 days before", "3 hours before", "30 minutes after", "at the moment itself", "1 week after", "90 minutes before"]
