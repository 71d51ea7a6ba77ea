"""Read a patient's reply text as one :class:`ReplyIntent`: pure, no I/O.

Three rules, tried in order; anything else is ``UNKNOWN`` so that a person reads it: a guessed
confirm or opt-out is worse than a message left for staff.

1. The whole reply is a keyword: "C", "yes", "Sí", "STOP", "👍".
2. The family grammar: "C1 N2", "1 3" (see :func:`parse_reply`).
3. A sentence: a confirm or decline keyword first (the head), then only phrases that say the same
   again (the tail), with asides such as "thanks" or "sorry" ("Yes I'll be there", "Sí, ahí estaré",
   "No, can't make it, sorry"). The tail must restate the answer: "yes please" and "no thanks" say
   too little ("Confirmed, thank you!" is enough: its head is the whole answer), "no problem" and
   "Yes I can't come" say something else. A question mark, a hedge ("but", "maybe", "pero", "late")
   or an opt-out word anywhere sends the sentence to staff, so a STOP word is never read as a decline.
   The phrase lists below are the whole grammar: a phrase that is not listed goes to staff.

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

# --- rule 3, sentences. Words are normalised (upper case, accents folded, apostrophes straight).
CONFIRM_HEADS = frozenset({"C", "Y", "YES", "SI", "CONFIRM", "CONFIRMED", "CONFIRMO", "CONFIRMAR", "CONFIRMADO"})
#: keywords that name the answer in full, so asides alone may follow them ("Confirmed, thank you!")
FULL_HEADS = frozenset({"CONFIRM", "CONFIRMED", "CONFIRMO", "CONFIRMAR", "CONFIRMADO"})
DECLINE_HEADS = frozenset({"N", "NO"})
#: what may follow a confirm keyword: the answer said again. "I'LL" also stands for "ILL" and "I WILL".
CONFIRM_TAILS = frozenset({
    "YES", "SI", "CONFIRM", "CONFIRMED", "I CONFIRM", "CONFIRMING", "CONFIRMO", "CONFIRMADO", "CONFIRMADA",
    "\N{THUMBS UP SIGN}", "\N{WHITE HEAVY CHECK MARK}",
    "I'LL BE THERE", "WILL BE THERE", "BE THERE", "WE'LL BE THERE", "I'LL BE THERE ON TIME",
    "SEE YOU THEN", "SEE YOU", "SEE YOU TOMORROW", "SEE YOU SOON", "SEE YOU THERE",
    "I'M COMING", "I'LL COME", "COMING", "WE'RE COMING", "I CAN MAKE IT", "I'LL MAKE IT", "I CAN COME",
    "SOUNDS GOOD", "PERFECT", "ALL GOOD",
    "AHI ESTARE", "ALLI ESTARE", "ALLA ESTARE", "AHI ESTAREMOS", "ALLI ESTAREMOS", "NOS VEMOS", "AHI NOS VEMOS",
    "ASISTIRE", "VOY", "ALLI VOY", "IRE", "PUEDO IR", "PERFECTO",
})
#: what may follow a decline keyword: the decline said again, or in Spanish the rest of a sentence the
#: "no" negates ("No puedo ir"; "No, no puedo" is "no" twice)
DECLINE_TAILS = frozenset({
    "NO", "CAN'T MAKE IT", "I CAN'T MAKE IT", "CAN'T COME", "I CAN'T COME", "I CAN'T", "CAN'T", "WE CAN'T MAKE IT",
    "WON'T BE THERE", "I WON'T BE THERE", "I WON'T BE ABLE TO MAKE IT", "I WON'T BE ABLE TO COME",
    "I WON'T MAKE IT", "WON'T MAKE IT", "NOT COMING", "I'M NOT COMING", "I'M NOT ABLE TO COME", "I DECLINE",
    "I'M UNABLE TO COME", "UNABLE TO COME", "UNABLE TO MAKE IT",
    "PUEDO", "PUEDO IR", "PUEDO ASISTIR", "VOY", "PODRE", "PODRE IR", "PODRE ASISTIR", "VOY A PODER",
    "VOY A PODER IR", "ASISTIRE", "IRE", "PODEMOS IR",
})
#: what may stand beside a restated answer, never instead of one ("yes please" goes to staff):
#: courtesies, and the appointment named
ASIDES = frozenset({
    "PLEASE", "THANKS", "THANK YOU", "THANKS SO MUCH", "THANK YOU SO MUCH", "THX", "TY", "SORRY", "I'M SORRY",
    "SO SORRY", "OK", "OKAY", "MY APPOINTMENT", "THE APPOINTMENT", "AFTER ALL",
    "GRACIAS", "MUCHAS GRACIAS", "LO SIENTO", "PERDON", "DISCULPE", "POR FAVOR", "MI CITA", "LA CITA",
    "\N{SLIGHTLY SMILING FACE}", "\N{SMILING FACE WITH SMILING EYES}",
})
#: doubt, conditions and second thoughts: a person reads these even after a clear keyword
HEDGES = frozenset({"BUT", "MAYBE", "PERHAPS", "PROBABLY", "IF", "UNLESS", "EXCEPT", "LATE", "LATER", "NOT SURE",
                    "PERO", "QUIZAS", "QUIZA", "TAL VEZ", "A LO MEJOR", "TARDE", "SI NO", "NO SE", "NO ESTOY SEGURO",
                    "NO ESTOY SEGURA", "EXCEPTO", "AUNQUE"})
#: words typed without their apostrophe, and contractions spelled out, read as the contraction
_SPELLINGS = {"ILL": "I'LL", "IM": "I'M", "CANT": "CAN'T", "CANNOT": "CAN'T", "WONT": "WON'T", "I WILL": "I'LL",
              "WE WILL": "WE'LL", "I AM": "I'M", "WE ARE": "WE'RE", "WILL NOT": "WON'T", "CAN NOT": "CAN'T",
              "I WILL NOT": "I WON'T", "WE WILL NOT": "WE WON'T"}
_LONG_SPELLINGS = re.compile(  # longest first: "I WILL NOT" is "I WON'T", not "I'LL NOT"
    r"\b(?:" + "|".join(sorted((k for k in _SPELLINGS if " " in k), key=len, reverse=True)) + r")\b")
_APOSTROPHES = str.maketrans({"\N{RIGHT SINGLE QUOTATION MARK}": "'", "\N{LEFT SINGLE QUOTATION MARK}": "'",
                              "`": "'"})
_WORDS = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]")  # a word (with apostrophes) or one other sign
_MAX_WORDS = 16  #: a longer text is a letter, not an answer


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
    return " ".join(_trim(_fold(text)).split()).upper()


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    # Dropping combining marks folds accents and also removes emoji variation selectors (U+FE0F).
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")
    return _SKIN_TONES.sub("", text)


def _trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]).startswith(_EDGE):
        start += 1
    while end > start and unicodedata.category(text[end - 1]).startswith(_EDGE):
        end -= 1
    return text[start:end]


def _sentence(text: str) -> ReplyIntent | None:
    """Rule 3: CONFIRM or DECLINE for a keyword followed by words that restate it; None otherwise.

    ``text`` is normalised; the caller has already sent anything with a question mark to staff."""
    signs = _WORDS.findall(text.translate(_APOSTROPHES))
    words = [_SPELLINGS.get(w, w) for w in signs if not unicodedata.category(w[0]).startswith("P")]
    words = _LONG_SPELLINGS.sub(lambda m: _SPELLINGS[m.group()], " ".join(words)).split()
    if not 2 <= len(words) <= _MAX_WORDS:
        return None
    padded = f" {' '.join(words)} "
    if any(f" {word} " in padded for word in HEDGES | OPT_OUT_WORDS):
        return None
    head, tail = words[0], words[1:]
    if head in CONFIRM_HEADS and _restates(tail, CONFIRM_TAILS, already=head in FULL_HEADS):
        return ReplyIntent.CONFIRM
    if head in DECLINE_HEADS and _restates(tail, DECLINE_TAILS):
        return ReplyIntent.DECLINE
    return None


def _restates(words: list[str], tails: frozenset[str], *, already: bool = False) -> bool:
    """``words`` are a run of phrases from ``tails`` and :data:`ASIDES`, at least one from ``tails``
    (unless the answer was ``already`` said in full)."""
    reached = {0: already}  # position in words -> reached with a phrase from tails on the way
    for start in range(len(words)):
        if start not in reached:
            continue
        for end in range(start + 1, len(words) + 1):
            phrase = " ".join(words[start:end])
            if phrase in tails or phrase in ASIDES:
                reached[end] = reached.get(end, False) or reached[start] or phrase in tails
    return reached.get(len(words), False)


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
    folded = _fold(text)
    word = " ".join(_trim(folded).split()).upper()
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
    if "?" not in folded and "\N{INVERTED QUESTION MARK}" not in folded:  # a question is for a person
        return ParsedReply(_sentence(word) or ReplyIntent.UNKNOWN)
    return ParsedReply(ReplyIntent.UNKNOWN)
