"""The reply corpus (tests/data/replies.tsv): real-looking replies in English and Spanish, each with how
vitalsync must read it. Whole sentences that restate a confirm or decline are understood; anything
that asks, hedges or says something else goes to a person."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from vitalsync.core.vocab import ReplyIntent
from vitalsync.status.replies import ParsedReply, parse_reply

CORPUS = Path(__file__).parent / "data" / "replies.tsv"
READINGS = {"staff": ReplyIntent.UNKNOWN} | {intent.value: intent for intent in ReplyIntent if intent != ReplyIntent.UNKNOWN}


def load() -> list[tuple[str, str, str]]:
    lines = [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["language", "text", "reading"]
    assert all(len(row) == 3 for row in rows), [row for row in rows if len(row) != 3]
    return [tuple(row) for row in rows[1:]]


def expected(reading: str) -> ParsedReply:
    """"confirm C1 N2" -> CONFIRM with member 1 confirmed and member 2 declined."""
    intent, *members = reading.split()
    return ParsedReply(READINGS[intent], tuple(sorted(int(m[1:]) for m in members if m[0] == "C")),
                       tuple(sorted(int(m[1:]) for m in members if m[0] == "N")))


ROWS = load()


@pytest.mark.parametrize(("language", "text", "reading"), ROWS, ids=[f"{lang}:{text}" for lang, text, _ in ROWS])
def test_each_reply_reads_as_the_corpus_says(language, text, reading):
    assert parse_reply(text, language) == expected(reading)


def test_the_corpus_is_large_unique_and_in_both_languages():
    assert len(ROWS) >= 150
    assert len({(lang, text) for lang, text, _ in ROWS}) == len(ROWS), "a text is listed twice"
    languages = Counter(lang for lang, _, _ in ROWS)
    assert languages["en"] >= 75 and languages["es"] >= 50, languages
    readings = Counter(reading.split()[0] for _, _, reading in ROWS)
    assert readings["confirm"] >= 40 and readings["decline"] >= 20 and readings["staff"] >= 60, readings


SENTENCES = [(lang, text) for lang, text, reading in ROWS
             if reading in ("confirm", "decline") and len(text.split()) > 1 and not any(ch.isdigit() for ch in text)]


@pytest.mark.parametrize("addition", ["?", " but", " pero", ", maybe", " if that's ok", " STOP", ", cancel", " tal vez"])
def test_a_question_a_hedge_or_an_opt_out_word_sends_any_answering_sentence_to_staff(addition):
    assert len(SENTENCES) >= 60
    for language, text in SENTENCES:
        assert parse_reply(text + addition, language).intent is ReplyIntent.UNKNOWN, text + addition
