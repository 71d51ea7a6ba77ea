"""Read a patient's reply text as one :class:`ReplyIntent`: pure, no I/O.

Only a whole reply that is exactly a keyword counts. Anything else, including "C please" and "please
don't stop", is ``UNKNOWN`` so that a person reads it: a guessed confirm or opt-out is worse than a
message left for staff.

Before matching, the text is normalised: Unicode NFKC, accents folded ("SÍ" == "SI"), emoji skin-tone
modifiers and variation selectors dropped, punctuation and spaces trimmed from both ends
("Stop!!" == "STOP"), inner spaces collapsed, upper-cased. The keyword sets below hold normalised
forms. Every set applies whatever the patient's language, so a Spanish speaker's "NO" or an English
message's "SÍ" is still understood.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from vitalsync.core.vocab import ReplyIntent

CONFIRM_WORDS = frozenset(
    {"C", "Y", "YES", "CONFIRM", "CONFIRMED", "1", "SI", "CONFIRMAR", "CONFIRMO"}
    | {"\N{THUMBS UP SIGN}", "\N{WHITE HEAVY CHECK MARK}"}  # any skin tone: see normalise()
)
# "OK" is left out on purpose: patients send it to mean "message received", not "I will come".
DECLINE_WORDS = frozenset({"N", "NO", "2"})
RESCHEDULE_WORDS = frozenset({"R", "RESCHEDULE", "REPROGRAMAR"})
# US carrier (CTIA) opt-out keywords and the FCC's TCPA revocation words: the carrier blocks further
# texts whatever we do and the law treats them as a revocation, so CANCEL or END stops all messages;
# it never merely declines one appointment.
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})  # "YES" is a confirm here, not an opt-in
HELP_WORDS = frozenset({"HELP", "INFO", "AYUDA"})

_INTENTS = {
    word: intent
    for words, intent in (
        (CONFIRM_WORDS, ReplyIntent.CONFIRM),
        (DECLINE_WORDS, ReplyIntent.DECLINE),
        (RESCHEDULE_WORDS, ReplyIntent.RESCHEDULE),
        (OPT_OUT_WORDS, ReplyIntent.OPT_OUT),
        (OPT_IN_WORDS, ReplyIntent.OPT_IN),
        (HELP_WORDS, ReplyIntent.HELP),
    )
    for word in words
}
_SKIN_TONES = re.compile("[\U0001f3fb-\U0001f3ff]")
# At most two digits a number: a family has few members, and a longer run (a phone number, a postcode)
# is not a choice. It also keeps int() far from its digit limit.
_NUMBER = r"\d{1,2}"
_SEPARATOR = r"(?:\s*,\s*|\s+(?:AND\s+|Y\s+)?)"
_CHOICES = re.compile(rf"{_NUMBER}(?:{_SEPARATOR}{_NUMBER})*")
# C or N, then a member's number: "C1 N2", "C1, C3", "N 2"
_ANSWER = rf"[CN] ?{_NUMBER}"
_ANSWERS = re.compile(rf"{_ANSWER}(?:{_SEPARATOR}{_ANSWER})*")
_EDGE = ("P", "Z", "Cc", "Cf")  # punctuation, spaces, control and zero-width characters


@dataclass(frozen=True)
class ParsedReply:
    intent: ReplyIntent
    choices: tuple[int, ...] = ()  #: family members the patient confirmed, by number; () for all
    declined: tuple[int, ...] = ()  #: family members the patient declined, by number

    @property
    def numbered(self) -> bool:
        """True when the reply answers for some members by number rather than for the whole message."""
        return bool(self.choices or self.declined)


def normalise(text: str) -> str:
    """The form keywords are matched in: see the module docstring."""
    text = unicodedata.normalize("NFKC", text)
    # Dropping combining marks folds accents and also removes emoji variation selectors (U+FE0F).
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")
    text = _SKIN_TONES.sub("", text)
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]).startswith(_EDGE):
        start += 1
    while end > start and unicodedata.category(text[end - 1]).startswith(_EDGE):
        end -= 1
    return " ".join(text[start:end].split()).upper()


def parse_reply(text: str, language: str = "en") -> ParsedReply:
    """What the patient meant by ``text``; ``UNKNOWN`` when a person must read it.

    ``language`` is the patient's message language. Every keyword set applies in every language
    today; the argument is there so that language-specific words can be added without changing callers.

    Numbered answers belong to family messages, which list each appointment with a number
    ("1) Ana 9:00, 2) Luis 9:30"). The grammar, as the family templates teach it:

    - a whole-message word answers for everyone: C, YES, 1 … confirm every member; N, NO, 2 decline all.
      "1" and "2" alone keep that plain meaning, the same as in a single reminder;
    - C or N followed by a member's number answers for that member: "C1 N2" confirms member 1 and
      declines member 2 (``CONFIRM`` with ``choices=(1,)``, ``declined=(2,)``); "N2" alone is
      ``DECLINE`` with ``declined=(2,)``. Answers may be separated by spaces, commas, "and" or "y",
      and a space may stand between the letter and the number ("C 1");
    - any other list of bare numbers, such as "3", "1 3", "1,3", "1 and 3" or "1 y 3", means
      "confirm members 1 and 3": ``CONFIRM`` with ``choices=(1, 3)`` (sorted, without repeats).

    The caller checks the numbers against the message it answers. A 0, a number of three digits or
    more, or one member both confirmed and declined ("C1 N1") is ``UNKNOWN``.
    """
    word = normalise(text)
    if word in _INTENTS:
        return ParsedReply(_INTENTS[word])
    if _ANSWERS.fullmatch(word):
        answers = re.findall(rf"([CN]) ?({_NUMBER})", word)
        confirmed = tuple(sorted({int(n) for letter, n in answers if letter == "C"}))
        declined = tuple(sorted({int(n) for letter, n in answers if letter == "N"}))
        if 0 not in confirmed + declined and not set(confirmed) & set(declined):
            return ParsedReply(ReplyIntent.CONFIRM if confirmed else ReplyIntent.DECLINE, confirmed, declined)
        return ParsedReply(ReplyIntent.UNKNOWN)
    if _CHOICES.fullmatch(word):
        choices = tuple(sorted({int(n) for n in re.findall(_NUMBER, word)}))
        if choices and choices[0] > 0:
            return ParsedReply(ReplyIntent.CONFIRM, choices)
    return ParsedReply(ReplyIntent.UNKNOWN)
