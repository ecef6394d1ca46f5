"""Invite codes: generation from a CSPRNG and forgiving normalisation (no database)."""

from __future__ import annotations

import collections
import re
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import codes
from app.codes import (
    ALPHABET,
    MAX_INPUT_LENGTH,
    could_be_issued,
    generate_code,
    mask_code,
    normalise_code,
)

ISSUED = re.compile(r"^[A-HJ-NP-Z2-9]{3}-[A-HJ-NP-Z2-9]{3}-[A-HJ-NP-Z2-9]{3}$")
NORMALISED = re.compile(r"^[A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3}$")


# --- the alphabet -----------------------------------------------------------------


def test_the_alphabet_is_32_unambiguous_uppercase_letters_and_digits():
    assert len(ALPHABET) == 32
    assert len(set(ALPHABET)) == 32
    assert set(ALPHABET) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    assert not set("0O1I") & set(ALPHABET)
    # Everything else is in: 26 letters + 10 digits - 4 look-alikes.
    assert set(ALPHABET) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") - set("0O1I")


# --- generation -------------------------------------------------------------------


def test_generated_codes_have_the_format():
    for _ in range(1000):
        code = generate_code()
        assert ISSUED.match(code), code
        assert could_be_issued(code)
        assert normalise_code(code) == code


def test_generation_draws_every_symbol_from_secrets(monkeypatch):
    reads = []
    # The low five bits pick the symbol; the high three must not matter.
    wanted = [ALPHABET.index(ch) | (i % 8) << 5 for i, ch in enumerate("K7M2QXHP9")]

    def fake_token_bytes(n):
        reads.append(n)
        return bytes(wanted)

    monkeypatch.setattr(codes.secrets, "token_bytes", fake_token_bytes)

    assert generate_code() == "K7M-2QX-HP9"
    assert reads == [9]  # one read of the CSPRNG, a byte per symbol


def test_generation_does_not_use_the_random_module(monkeypatch):
    import random

    def forbidden(*_args, **_kwargs):
        raise AssertionError("random is not a CSPRNG")

    for name in ("choice", "choices", "randint", "randrange", "random", "sample"):
        monkeypatch.setattr(random, name, forbidden)
    assert ISSUED.match(generate_code())


def test_the_symbols_are_spread_evenly():
    # 3,556 codes = 32,004 symbols: about 1,000 per symbol.
    counts = collections.Counter()
    per_position = [collections.Counter() for _ in range(9)]
    for _ in range(3556):
        raw = generate_code().replace("-", "")
        counts.update(raw)
        for position, symbol in enumerate(raw):
            per_position[position][symbol] += 1
    total = sum(counts.values())
    expected = total / len(ALPHABET)

    assert set(counts) == set(ALPHABET)
    # Chi-square with 31 degrees of freedom has mean 31 and sd ~7.9; 120 is
    # beyond p < 1e-11 for a uniform source but far below any biased one.
    chi_square = sum((counts[s] - expected) ** 2 / expected for s in ALPHABET)
    assert chi_square < 120, chi_square
    for symbol in ALPHABET:
        # sd ~31 around 1,000; 25% is eight standard deviations.
        assert 0.75 * expected < counts[symbol] < 1.25 * expected, (symbol, counts[symbol])
    # Every symbol shows up in every position (~111 expected in each).
    for counter in per_position:
        assert set(counter) == set(ALPHABET)


def test_no_duplicates_among_ten_thousand_codes():
    generated = [generate_code() for _ in range(10_000)]
    assert len(set(generated)) == len(generated)


# --- normalisation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" abc 234 xyz ", "ABC-234-XYZ"),
        ("abc234xyz", "ABC-234-XYZ"),
        ("ABC234XYZ", "ABC-234-XYZ"),
        ("ABC-234-XYZ", "ABC-234-XYZ"),
        ("abc-234 xyz", "ABC-234-XYZ"),
        ("aBc-234-XyZ", "ABC-234-XYZ"),
        ("\tABC-234-XYZ\n", "ABC-234-XYZ"),
        ("\r\n abc 234 xyz \t", "ABC-234-XYZ"),
        ("ABC--234--XYZ", "ABC-234-XYZ"),
        ("ABC - 234 - XYZ", "ABC-234-XYZ"),
        ("A-B-C-2-3-4-X-Y-Z", "ABC-234-XYZ"),
        ("-ABC-234-XYZ-", "ABC-234-XYZ"),
        # Normalises, though it can never have been issued (1 is not in the alphabet).
        ("ABC-123-XYZ", "ABC-123-XYZ"),
        (" abc 123 xyz ", "ABC-123-XYZ"),
        ("000-OOO-III", "000-OOO-III"),
        # The longest input still looked at.
        ("ABC-234-XYZ".center(MAX_INPUT_LENGTH), "ABC-234-XYZ"),
    ],
)
def test_normalises_forgiving_input(raw, expected):
    assert normalise_code(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " ",
        " \t\n ",
        "ABC-234-XY",  # eight symbols
        "AB",
        "ABC-234-XYZW",  # ten symbols
        "ABCD234XYZ",
        "ABC-234-XYZ-ABC",
        "ABC_234_XYZ",  # only dashes and whitespace separate
        "ABC.234.XYZ",
        "ABC/234/XYZ",
        "ABC-234-XY!",
        "ABC-234-XYZ;",
        "ABC+234+XYZ",
        "ÀBC234XYZ",  # non-ASCII letter
        "ABC-234-XYZ\u00e9",
        "\uff21\uff22\uff23\uff12\uff13\uff14\uff38\uff39\uff3a",  # full-width ABC234XYZ
        "ABC-\uff12\uff13\uff14-XYZ",  # full-width digits
        "ABC\u00a0234\u00a0XYZ",  # no-break spaces
        "ABC\u2013234\u2013XYZ",  # en dashes
        "ABC\x00234XYZ",  # NUL
        "ABC-234-XYZ\x00",
        "ABC234XYZ" * 1000,
        "A" * 100_000,
        " " * MAX_INPUT_LENGTH + "ABC234XYZ",
        "ABC-234-XYZ".center(MAX_INPUT_LENGTH + 1),
    ],
)
def test_rejects_what_cannot_be_a_code(raw):
    assert normalise_code(raw) is None


@pytest.mark.parametrize(
    "value",
    [None, 123, 123_456_789, 1.5, True, b"ABC234XYZ", ["ABC-234-XYZ"], {"code": "ABC-234-XYZ"}],
)
def test_rejects_values_that_are_not_strings(value):
    assert normalise_code(value) is None


# --- properties ---------------------------------------------------------------------

symbol = st.sampled_from(ALPHABET)
separator = st.sampled_from(["", "", "-", " ", "  ", " - ", "\t", "--"])
outer_space = st.text(alphabet=" \t\r\n", max_size=3)


@st.composite
def issued_codes(draw) -> str:
    return codes.format_code("".join(draw(st.lists(symbol, min_size=9, max_size=9))))


@st.composite
def mangled(draw, code: str) -> str:
    """``code`` as a person might type it: any case, separators anywhere."""
    parts = []
    for ch in code.replace("-", ""):
        parts.append(ch.lower() if draw(st.booleans()) else ch)
        parts.append(draw(separator))
    return draw(outer_space) + "".join(parts[:-1]) + draw(outer_space)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), code=issued_codes())
def test_any_typing_of_a_code_normalises_back_to_it(data, code):
    typed = data.draw(mangled(code))
    assert normalise_code(typed) == code
    assert normalise_code(typed.lower()) == code
    assert normalise_code(typed.replace("-", "")) == code


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.text(), st.text(alphabet=ALPHABET.lower() + ALPHABET + "0O1I -\t")))
def test_normalise_is_idempotent_and_total(raw):
    once = normalise_code(raw)
    assert once is None or NORMALISED.match(once)
    if once is not None:
        assert normalise_code(once) == once


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.text(max_size=200),
        st.binary(),
        st.none(),
        st.integers(),
        st.floats(allow_nan=True),
        st.lists(st.text(max_size=5), max_size=3),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    )
)
def test_normalise_never_raises(value):
    result = normalise_code(value)
    assert result is None or NORMALISED.match(result)


# --- could_be_issued and mask_code ----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ABC-234-XYZ", True),
        ("HJK-MNP-789", True),
        ("ABC-123-XYZ", False),  # 1
        ("ABC-234-XY0", False),  # 0
        ("OBC-234-XYZ", False),  # O
        ("ABC-234-XYI", False),  # I
    ],
)
def test_could_be_issued(code, expected):
    assert could_be_issued(code) is expected


@settings(max_examples=200, deadline=None)
@given(code=issued_codes())
def test_every_well_formed_alphabet_code_could_be_issued(code):
    assert could_be_issued(code)


def test_mask_code_keeps_only_the_first_group():
    assert mask_code("ABC-234-XYZ") == "ABC-***-***"
    code = generate_code()
    masked = mask_code(code)
    assert masked == code[:3] + "-***-***"
    assert len(masked) == len(code)
    assert set(masked[3:]) == {"-", "*"}


def test_secrets_is_the_module_in_use():
    # The monkeypatch above must patch the module app.codes really draws from.
    assert codes.secrets is secrets
