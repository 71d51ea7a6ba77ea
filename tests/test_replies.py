"""A patient's reply text becomes one intent; anything unclear goes to a person."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitalsync.core.vocab import ReplyIntent
from vitalsync.status.replies import (
    CONFIRM_WORDS,
    DECLINE_WORDS,
    HELP_WORDS,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    RESCHEDULE_WORDS,
    ParsedReply,
    parse_reply,
)

THUMBS_UP = "\N{THUMBS UP SIGN}"
VS16 = "\N{VARIATION SELECTOR-16}"


def intent(text: str, language: str = "en") -> ReplyIntent:
    return parse_reply(text, language).intent


@pytest.mark.parametrize(
    "text",
    ["C", "c", "Y", "yes", "Yes!", "  YES  ", "confirm", "Confirmed.", "1", '"C"', "y?", "\N{WHITE HEAVY CHECK MARK}"],
)
def test_confirm_words_confirm(text):
    assert parse_reply(text) == ParsedReply(ReplyIntent.CONFIRM)


def test_ok_is_not_a_confirmation():
    assert intent("OK") is ReplyIntent.UNKNOWN


@pytest.mark.parametrize("text", ["N", "no", "No.", "2"])
def test_decline_words_decline(text):
    assert parse_reply(text) == ParsedReply(ReplyIntent.DECLINE)


@pytest.mark.parametrize("language", ["en", "es"])
def test_no_declines_in_english_and_spanish(language):
    assert intent("no", language) is ReplyIntent.DECLINE


@pytest.mark.parametrize("text", ["R", "reschedule", "Reprogramar"])
def test_reschedule_words_reschedule(text):
    assert intent(text) is ReplyIntent.RESCHEDULE


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", "Stop!!", "stop.", "STOPALL", "stop all", "Stop   All", "unsubscribe", "END", "quit",
     "revoke", "optout", "opt out", "Opt Out!"],
)  # fmt: skip
def test_opt_out_words_opt_out(text):
    assert intent(text) is ReplyIntent.OPT_OUT


@pytest.mark.parametrize("text", ["CANCEL", "cancel", "Cancel.", "CANCEL!!"])
def test_cancel_is_an_opt_out_never_a_decline(text):
    assert intent(text) is ReplyIntent.OPT_OUT


@pytest.mark.parametrize("text", ["START", "unstop"])
def test_start_opts_back_in(text):
    assert intent(text) is ReplyIntent.OPT_IN


def test_yes_is_a_confirmation_not_an_opt_in():
    assert intent("YES") is ReplyIntent.CONFIRM


@pytest.mark.parametrize("text", ["HELP", "info", "Ayuda?"])
def test_help_words_ask_for_help(text):
    assert intent(text) is ReplyIntent.HELP


@pytest.mark.parametrize(
    "text",
    [THUMBS_UP, THUMBS_UP + VS16]
    + [THUMBS_UP + chr(tone) for tone in range(0x1F3FB, 0x1F400)]
    + [THUMBS_UP + VS16 + "\U0001f3fd", " " + THUMBS_UP + "\U0001f3ff! "],
)
def test_thumbs_up_with_skin_tone_confirms(text):
    assert intent(text) is ReplyIntent.CONFIRM


@pytest.mark.parametrize(
    "text", ["SI", "si", "Sí", "SÍ", "¡Sí!", "SI\N{COMBINING ACUTE ACCENT}", "confirmar", "Confirmo."]
)
@pytest.mark.parametrize("language", ["en", "es"])
def test_spanish_si_confirms(text, language):
    assert intent(text, language) is ReplyIntent.CONFIRM


def test_full_width_letters_read_as_plain_letters():
    assert intent("ＹＥＳ") is ReplyIntent.CONFIRM


@pytest.mark.parametrize(
    "text",
    ["C please", "yes please", "please don't stop", "Stop sending me these", "Stop it please!", "I can't come",
     "no thanks", "cancel my appointment", "opt-out", "Y Y"],
)  # fmt: skip
def test_sentences_go_to_staff(text):
    assert intent(text) is ReplyIntent.UNKNOWN


@pytest.mark.parametrize(
    "text",
    ["", "   ", "!!!", "?", "asdfgh", "\N{SMILING FACE WITH SMILING EYES}", "\N{WAVING HAND SIGN}\U0001f3fd",
     THUMBS_UP * 2, THUMBS_UP + " " + THUMBS_UP, "\N{HEAVY BLACK HEART}\ufe0f", "\x00", "0", "00", "123",
     "555 123 4567", "1 0"],
)  # fmt: skip
def test_garbage_and_emoji_go_to_staff(text):
    assert intent(text) is ReplyIntent.UNKNOWN


@pytest.mark.parametrize(
    ("text", "choices"),
    [("3", (3,)), ("1 3", (1, 3)), ("1,3", (1, 3)), ("1, 3.", (1, 3)), ("4,5", (4, 5)), ("1 and 3", (1, 3)),
     ("1 y 3", (1, 3)), ("3 1", (1, 3)), ("1 2", (1, 2)), ("2,2,4", (2, 4)), ("１ ３", (1, 3)), ("10 12", (10, 12))],
)  # fmt: skip
def test_numbered_answers_confirm_those_family_members(text, choices):
    assert parse_reply(text) == ParsedReply(ReplyIntent.CONFIRM, choices)


def test_one_and_two_alone_keep_their_plain_meaning():
    assert parse_reply("1") == ParsedReply(ReplyIntent.CONFIRM, ())
    assert parse_reply("2") == ParsedReply(ReplyIntent.DECLINE, ())


def test_no_word_has_two_meanings():
    sets = [CONFIRM_WORDS, DECLINE_WORDS, RESCHEDULE_WORDS, OPT_OUT_WORDS, OPT_IN_WORDS, HELP_WORDS]
    assert sum(len(words) for words in sets) == len(frozenset().union(*sets))


@given(st.text())
def test_parse_reply_never_raises(text):
    reply = parse_reply(text)
    assert isinstance(reply.intent, ReplyIntent)
    assert all(n > 0 for n in reply.choices)


@given(st.lists(st.sampled_from(["", " ", ".", "!", "?", '"', "\u200b"]), max_size=4).map("".join))
def test_surrounding_punctuation_and_spaces_never_change_a_keyword(edge):
    for word in sorted(CONFIRM_WORDS | DECLINE_WORDS | OPT_OUT_WORDS | HELP_WORDS):
        assert parse_reply(edge + word.lower() + edge) == parse_reply(word)


@pytest.mark.parametrize(
    ("text", "confirmed", "declined"),
    [("C1 N2", (1,), (2,)), ("c1, n2", (1,), (2,)), ("N2", (), (2,)), ("C 1 N 3", (1,), (3,)), ("C1 C3", (1, 3), ()),
     ("N1 and N2", (), (1, 2)), ("C2 y N1", (2,), (1,)), ("C1.", (1,), ())],
)  # fmt: skip
def test_c_or_n_and_a_number_answer_for_one_family_member(text, confirmed, declined):
    reply = parse_reply(text)
    assert (reply.choices, reply.declined) == (confirmed, declined)
    assert reply.intent is (ReplyIntent.CONFIRM if confirmed else ReplyIntent.DECLINE)


@pytest.mark.parametrize("text", ["C1 N1", "C0", "N100", "C1 2", "CN1", "C1N", "NO 2"])
def test_contradictory_or_garbled_numbered_answers_go_to_staff(text):
    assert intent(text) is ReplyIntent.UNKNOWN
