"""HL7 v2 messages as text: separators from MSH-1/MSH-2, segments, fields, repetitions, components,
subcomponents and escapes (HL7 v2.5 chapter 2).

Positions are 1-based as in the standard: ``segment.get(11, 4)`` is SCH-11, first repetition,
component 4. MSH counts its field separator as MSH-1, so ``msh.get(9, 2)`` is MSH-9.2 as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
#: MSH-18 values (HL7 table 0211) and the Python codec each names.
CHARSETS = {"ASCII": "ascii", "UNICODE UTF-8": "utf-8", "UNICODE": "utf-8",
            **{f"8859/{n}": f"iso8859-{n}" for n in range(1, 16)}}


class MessageError(Exception):
    """A message vitalsync cannot apply. The reason names positions, never patient data.

    ``code`` is from HL7 table 0357 (100 segment sequence error, 101 required field missing,
    102 data type error, 207 application internal error); ``ack`` is what the sender is told:
    AE "the message is wrong, resending it will not help", AR "not taken now, send it again".
    """

    def __init__(self, reason: str, *, where: str = "", code: int = 101, ack: str = "AE") -> None:
        super().__init__(reason)
        self.reason, self.where, self.code, self.ack = reason, where, code, ack


@dataclass(frozen=True)
class Separators:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def encoding(self) -> str:
        """MSH-2 as written."""
        return self.component + self.repetition + self.escape + self.subcomponent


@dataclass(frozen=True)
class Repetition:
    raw: str
    sep: Separators

    def get(self, component: int = 1, subcomponent: int = 1) -> str:
        """One component (or subcomponent), unescaped; '' when absent or the explicit null ``""``."""
        part = _nth(_nth(self.raw, self.sep.component, component), self.sep.subcomponent, subcomponent)
        return "" if part == '""' else unescape(part, self.sep)


@dataclass(frozen=True)
class Segment:
    name: str
    fields: tuple[str, ...]  #: raw text; fields[0] is field 1
    sep: Separators

    def field(self, number: int) -> list[Repetition]:
        """Every repetition of a field (none when it is empty)."""
        raw = self.fields[number - 1] if 0 < number <= len(self.fields) else ""
        if self.name == "MSH" and number <= 2:
            return [Repetition(raw, Separators("", "", "", "", ""))]
        reps = raw.split(self.sep.repetition) if self.sep.repetition else [raw]
        return [Repetition(rep, self.sep) for rep in reps if rep]

    def get(self, number: int, component: int = 1, subcomponent: int = 1) -> str:
        reps = self.field(number)
        return reps[0].get(component, subcomponent) if reps else ""

    def raw(self, number: int) -> str:
        return self.fields[number - 1] if 0 < number <= len(self.fields) else ""


@dataclass(frozen=True)
class Message:
    segments: tuple[Segment, ...]
    sep: Separators

    @property
    def header(self) -> Segment:
        return self.segments[0]

    def all(self, name: str) -> list[Segment]:
        return [segment for segment in self.segments if segment.name == name]

    def first(self, name: str) -> Segment | None:
        return next(iter(self.all(name)), None)


def parse(text: str) -> Message:
    """Split a message into segments; raise MessageError when it is not HL7 v2."""
    # the standard ends segments with CR; senders that add or substitute LF are read too
    lines = [line for line in re.split(r"\r\n|\r|\n", text) if line.strip()]
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
        raise MessageError("the message does not start with an MSH segment", where="MSH", code=100)
    sep = _separators(lines[0])
    segments = []
    for number, line in enumerate(lines, start=1):
        name = line[:3]
        if not SEGMENT_ID.match(name) or (len(line) > 3 and line[3] != sep.field):
            raise MessageError(f"segment {number} is not an HL7 segment", where=f"segment {number}", code=100)
        parts = line.split(sep.field)
        fields = [sep.field, *parts[1:]] if name == "MSH" and number == 1 else parts[1:]
        segments.append(Segment(name, tuple(fields), sep))
    return Message(tuple(segments), sep)


def head(text: str) -> Message | None:
    """The MSH segment alone, to answer a message whose later segments could not be read."""
    try:
        return parse(re.split(r"[\r\n]", text.lstrip("\r\n"), maxsplit=1)[0])
    except MessageError:
        return None


def _separators(header: str) -> Separators:
    field = header[3]
    encoding = header[4:].split(field, 1)[0]
    chars = [field, *encoding[:4]]
    if len(encoding) < 3 or len(set(chars)) != len(chars) or any(c.isalnum() or c in "\r\n " for c in chars):
        raise MessageError("MSH-1/MSH-2 do not declare valid separators", where="MSH-2", code=102)
    return Separators(field, *encoding[:3], encoding[3] if len(encoding) > 3 else "")


def _nth(text: str, separator: str, number: int) -> str:
    if not separator:
        return text if number == 1 else ""
    parts = text.split(separator)
    return parts[number - 1] if number <= len(parts) else ""


def unescape(text: str, sep: Separators) -> str:
    if not sep.escape or sep.escape not in text:
        return text
    e = re.escape(sep.escape)
    named = {"F": sep.field, "S": sep.component, "T": sep.subcomponent, "R": sep.repetition, "E": sep.escape,
             ".br": "\n"}

    def one(match: re.Match) -> str:
        code = match.group(1)
        if code in named:
            return named[code]
        if code[:1] == "X" and re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", code[1:]):
            data = bytes.fromhex(code[1:])
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return data.decode("latin-1")
        return ""  # highlighting (H, N), character-set switches (C, M) and formatting (.sp, .in…)

    return re.sub(f"{e}([^{e}]*){e}", one, text)


def escape(text: str, sep: Separators) -> str:
    """Text made safe for one field of a message with these separators."""
    out = text.replace(sep.escape, f"{sep.escape}E{sep.escape}") if sep.escape else text
    for char, code in ((sep.field, "F"), (sep.component, "S"), (sep.subcomponent, "T"), (sep.repetition, "R")):
        if char:
            out = out.replace(char, f"{sep.escape}{code}{sep.escape}")
    return re.sub(r"[\r\n]+", " ", out)


def decode(data: bytes) -> tuple[str, str]:
    """The message's text and the codec it was in: MSH-18's, else UTF-8, else Windows-1252."""
    header = data.split(b"\r", 1)[0].decode("latin-1")
    declared = ""
    if header.startswith("MSH") and len(header) > 3:
        fields = header.split(header[3])
        declared = fields[17] if len(fields) > 17 else ""
        for separator in header[4:6]:  # the first repetition's first component
            declared = declared.split(separator)[0]
        declared = declared.strip().upper()
    if declared:
        codec = CHARSETS.get(declared)
        if codec is None:
            raise MessageError(f"MSH-18 names a character set vitalsync does not read ({declared})", where="MSH-18",
                               code=102)
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            raise MessageError(f"the message is not in its declared character set ({declared})", where="MSH-18",
                               code=102) from None
    for codec in ("utf-8", "cp1252", "latin-1"):
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")
