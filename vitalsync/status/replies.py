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
_CHOICES = re.compile(rf"{_NUMBER}(?:(?:\s*,\s*|\s+(?:AND\s+|Y\s+)?){_NUMBER})*")
_EDGE = ("P", "Z", "Cc", "Cf")  # punctuation, spaces, control and zero-width characters


@dataclass(frozen=True)
class ParsedReply:
    intent: ReplyIntent
    choices: tuple[int, ...] = ()  #: family members the patient confirmed, by number; () for all


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

    Numbered answers belong to family messages, which list each appointment with a number. "1" and "2"
    alone keep their plain meaning (confirm, decline), the same as in a single reminder. Any other list
    of numbers, such as "3", "1 3", "1,3", "1 and 3" or "1 y 3", means "confirm members 1 and 3": it
    gives ``CONFIRM`` with ``choices=(1, 3)`` (sorted, without repeats). The caller checks the numbers
    against the message it answers. A 0 or a number of three digits or more is ``UNKNOWN``.
    """
    word = normalise(text)
    if word in _INTENTS:
        return ParsedReply(_INTENTS[word])
    if _CHOICES.fullmatch(word):
        choices = tuple(sorted({int(n) for n in re.findall(_NUMBER, word)}))
        if choices and choices[0] > 0:
            return ParsedReply(ReplyIntent.CONFIRM, choices)
    return ParsedReply(ReplyIntent.UNKNOWN)
