"""Patients for the Open Dental test database: families with free-text phones and emails.

Drawn from one ``random.Random`` in a fixed order, so a seed always gives the same patients. The
first patients take every awkward variant in turn (each PatStatus, broken and foreign phones, two
emails, a home phone only, each language and opt-out), so even a small database holds each edge
case; the rest are drawn with realistic shares. Rows are yielded: memory stays flat.
"""

from __future__ import annotations

import random
import unicodedata
from array import array
from datetime import date, datetime, timedelta

FIRST = ("James", "Mary", "Robert", "Linda", "Michael", "Emily", "David", "Sarah", "Kevin", "Grace",
         "Thomas", "Hannah", "Daniel", "Olivia", "Brian", "Chloe", "Aisha", "Wei", "Noah", "Zoë")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Miller", "Davis", "Wilson", "Taylor", "Anderson",
        "Thompson", "Moore", "Clark", "Lewis", "Walker", "Young", "Patel", "Nguyen", "O'Brien")
HISPANIC_FIRST = ("José", "María", "Luis", "Carmen", "Javier", "Lucía", "Miguel", "Sofía", "Ana", "Mateo")
HISPANIC_LAST = ("García", "Rodríguez", "Martínez", "Hernández", "López", "Pérez", "Núñez", "de la Cruz")
AREAS = ("503", "971", "360", "212", "312", "773")
PHONE_FORMATS = ("({a}){e}-{l}", "({a}){e}-{l}", "{a}{e}{l}", "{a}-{e}-{l}", "{a}.{e}.{l}", "({a}) {e}-{l}",
                 "+1 {a} {e} {l}", "1-{a}-{e}-{l}", "{a} {e} {l} x12")
BROKEN_PHONES = ("{e}-{l}", "{a}-{e}-{l}{l}", "n/a", "none", "000-000-0000", "(111)111-1111", "call mom",
                 "{a}-{e}-{l3}")
FOREIGN_PHONES = ("+44 7700 900{l3}", "+52 1 55 {e}{l}")
MAIL_DOMAINS = ("example.com", "example.org", "example.net")
#: PatStatus: 0 Patient, 1 NonPatient, 2 Inactive, 3 Archived, 4 Deleted, 5 Deceased, 6 Prospective
PAT_STATUS = ((6, 0.02), (5, 0.01), (4, 0.02), (3, 0.03), (2, 0.05), (1, 0.02), (0, 0.85))
#: ContactMethod: 0 None, 1 DoNotCall, 2 HmPhone, 3 WkPhone, 4 WirelessPh, 5 Email, 7 Mail, 8 TextMessage
CONTACT = ((1, 0.04), (0, 0.6), (2, 0.08), (3, 0.02), (4, 0.12), (5, 0.07), (7, 0.02), (8, 0.05))
TXT_MSG_OK = ((0, 0.5), (1, 0.4), (2, 0.1))  # YN: Unknown, Yes, No
LANGUAGES = (("", 0.72), ("eng", 0.1), ("spa", 0.12), ("Vietnamese", 0.02), ("fra", 0.02), ("Tagalog", 0.02))
WIRELESS = (("good", 0.66), ("", 0.25), ("broken", 0.07), ("foreign", 0.02))
#: the first patients' mobiles: each broken shape once among them
FIRST_WIRELESS = ("good", "", "broken", "foreign", "broken", "good", "broken", "", "broken", "broken", "good",
                  "broken", "broken", "broken")
EMAILS = (("one", 0.58), ("", 0.3), ("two", 0.07), ("broken", 0.05))
#: commoptout (OptOutSms, OptOutEmail) bits: 1 All, 2 eConfirm, 4 eReminder, 8 eThankYou, 4096 MsgToPay
OPT_OUTS = ((1, 0), (4, 0), (2, 0), (8, 0), (0, 1), (0, 4), (1, 1), (4096, 0), (5, 0))
VARIANTS = 24  #: the first patients take the variants in turn; children's rules start after them
NO_DATE = datetime(1, 1, 1)
NO_DAY = date(1, 1, 1)
PATIENT_COLUMNS = ("PatNum", "LName", "FName", "MiddleI", "Preferred", "PatStatus", "Gender", "Position",
                   "Birthdate", "Address", "City", "State", "Zip", "HmPhone", "WkPhone", "WirelessPhone",
                   "Guarantor", "Email", "PriProv", "BillingType", "ClinicNum", "PreferConfirmMethod",
                   "PreferContactMethod", "PreferRecallMethod", "Language", "DateTStamp", "TxtMsgOk",
                   "DateTimeDeceased", "DateFirstVisit", "Country")


def pick(rng: random.Random, table):
    r = rng.random()
    for value, share in table:
        r -= share
        if r < 0:
            return value
    return table[-1][0]


def forced(i: int, table, rng: random.Random, shift: int = 0):
    """The (i - shift)-th variant while there are variants left, then a draw by share."""
    return table[i - shift][0] if 0 <= i - shift < len(table) else pick(rng, table)


class People:
    """Families: a guarantor, maybe a spouse and children who share the parents' home phone.

    After :meth:`rows` has run, ``status[PatNum]`` and ``guarantor[PatNum]`` describe everyone.
    """

    def __init__(self, rng: random.Random, start: date, n: int) -> None:
        self.rng, self.start, self.n = rng, start, n
        self.status = bytearray(n + 1)
        self.guarantor = array("l", bytes(8 * (n + 1)))
        self.broken = 0

    def rows(self, stamp):
        """Patient rows (PATIENT_COLUMNS) for PatNum 1..n; ``stamp()`` gives each a DateTStamp."""
        rng, num = self.rng, 0
        while num < self.n:
            size = min(self.n - num, pick(rng, ((1, 0.38), (2, 0.25), (3, 0.18), (4, 0.14), (5, 0.05))))
            family = (rng.random() < 0.2, num + 1, self.number(PHONE_FORMATS) if rng.random() < 0.45 else "",
                      rng.choice((0, 1, 1, 2)))
            for member in range(size):
                num += 1
                yield self.patient(num, member, *family, stamp())

    def opt_outs(self):
        """commoptout rows: each flag combination once, then about 2% of patients."""
        rng = self.rng
        for num in range(1, self.n + 1):
            flags = OPT_OUTS[num - 1] if num <= len(OPT_OUTS) else \
                rng.choice(OPT_OUTS) if rng.random() < 0.02 else None
            if flags:
                yield (num, *flags)

    def number(self, formats) -> str:
        rng = self.rng
        exchange = rng.randrange(200, 1000)
        exchange += exchange % 100 == 11  # N11 exchanges are service codes
        line = f"{rng.randrange(10000):04d}"
        return rng.choice(formats).format(a=rng.choice(AREAS), e=exchange, l=line, l3=line[:3])

    def wireless(self, i: int) -> str:
        kind = FIRST_WIRELESS[i] if i < len(FIRST_WIRELESS) else pick(self.rng, WIRELESS)
        if kind == "broken":  # every broken shape in turn
            self.broken += 1
            return self.number((BROKEN_PHONES[self.broken % len(BROKEN_PHONES)],))
        return self.number(FOREIGN_PHONES) if kind == "foreign" else self.number(PHONE_FORMATS) if kind else ""

    def email(self, i: int, first: str, last: str) -> str:
        rng = self.rng
        user = unicodedata.normalize("NFKD", f"{first}.{last}".lower()).encode("ascii", "ignore").decode()
        user = user.replace("'", "").replace(" ", "")
        kind = forced(i, EMAILS, rng)
        one = f"{user}{rng.randrange(100)}@{rng.choice(MAIL_DOMAINS)}"
        if kind == "two":
            return one + rng.choice(("; ", ",", ";")) + f"{last.lower()[:4]}.family@{rng.choice(MAIL_DOMAINS)}"
        return {"one": one, "": "", "broken": rng.choice((f"{user}@", "none", f"{user} at example.com"))}[kind]

    def patient(self, num, member, hispanic, head, home, clinic, stamp):
        rng, i = self.rng, num - 1
        last = HISPANIC_LAST[head % len(HISPANIC_LAST)] if hispanic else LAST[head % len(LAST)]
        first = rng.choice(HISPANIC_FIRST if hispanic else FIRST)
        child = member >= 2 and i >= VARIANTS
        age = rng.randrange(3, 18) if child else rng.randrange(19, 90)
        birth = NO_DAY if i == 3 else self.start - timedelta(days=age * 365 + rng.randrange(365))
        status = forced(i, PAT_STATUS, rng)
        wireless = "" if child and rng.random() < 0.7 else self.wireless(i)
        if i == 7:  # reachable only on the home phone
            wireless, home = "", home or self.number(PHONE_FORMATS)
        work = self.number(PHONE_FORMATS) if not child and rng.random() < 0.1 else ""
        email = "" if child and rng.random() < 0.8 else self.email(i, first, last)
        language = "spa" if hispanic and i >= VARIANTS and rng.random() < 0.7 else forced(i, LANGUAGES, rng)
        deceased = NO_DATE if status != 5 else \
            datetime.combine(self.start - timedelta(days=rng.randrange(30, 900)), datetime.min.time())
        self.status[num], self.guarantor[num] = status, head
        return (num, last, first, rng.choice(("", "", "", "A", "M")), rng.choice(("",) * 9 + (first[:3],)),
                status, rng.randrange(2) if rng.random() < 0.97 else 2, 2 if child else rng.randrange(2), birth,
                f"{rng.randrange(100, 9999)} {rng.choice(('Oak', 'Main', 'Pine', 'River'))} St", "Portland", "OR",
                f"97{rng.randrange(200, 300)}", home, work, wireless, head, email, rng.choice((1, 2)), 13,
                clinic, forced(i, CONTACT, rng), forced(i, CONTACT, rng, shift=4), pick(rng, CONTACT), language, stamp,
                forced(i, TXT_MSG_OK, rng), deceased, self.start - timedelta(days=rng.randrange(30, 3000)), "")
