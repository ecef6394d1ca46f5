"""Field types for the schemas: text people will see, times in UTC, integers from JSON."""

from __future__ import annotations

import datetime as dt
import functools

import regex
from marshmallow import fields, validate


def between(low: int, high: int) -> validate.Range:
    return validate.Range(min=low, max=high, error="Must be between {min} and {max}.")


def json_integer(**kwargs) -> fields.Integer:
    """A JSON integer: ``"5"``, ``5.5``, ``5.0`` and ``true`` are refused."""
    return fields.Integer(strict=True, error_messages={"invalid": "Must be an integer."}, **kwargs)


# Text people will see (a group's name and icon on the public preview) must
# show something and hide nothing. The character sets come from Unicode's own
# properties, through the `regex` library (the standard library has no
# Default_Ignorable_Code_Point), in every plane.
_REFUSED_PROPERTIES = regex.compile(
    r"[\p{Default_Ignorable_Code_Point}\p{Bidi_Control}\p{Cc}\p{Cf}\p{Zl}\p{Zp}]"
)
# Blank-looking but neither ignorable nor whitespace.
_BLANK_GLYPHS = frozenset("\u2800")  # BRAILLE PATTERN BLANK
# Ignorable, but emoji need them: the zero-width joiner and the variation
# selectors that pick text or emoji presentation.
_EMOJI_PARTS = frozenset("\u200d") | frozenset(chr(c) for c in range(0xFE00, 0xFE10))
_LINE_BREAKS = frozenset("\t\n\r")
# Tag characters are refused but for the one thing they are for: a flag's
# emoji tag sequence (black flag, tags, cancel tag: England, Scotland, Wales).
EMOJI_TAG_SEQUENCE = regex.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")
_COMBINING = regex.compile(r"[\p{Mn}\p{Me}]")
_MARKS = regex.compile(r"[\p{Mn}\p{Mc}\p{Me}]")
# More combining marks than this in a row is stacking ("Zalgo"), not writing.
MAX_COMBINING_RUN = 4


@functools.cache
def _every_character() -> str:
    return "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)


def _matching(pattern: regex.Pattern) -> frozenset[str]:
    return frozenset(m.group() for m in pattern.finditer(_every_character()))


# What str.strip() removes: every whitespace character.
_WHITESPACE = frozenset(ch for ch in _every_character() if ch.isspace())


@functools.cache
def _refused(multiline: bool) -> frozenset[str]:
    """Refused anywhere in text: default-ignorable characters (zero-width
    spaces, Hangul fillers, tag characters...), bidi controls, control and
    format characters, line and paragraph separators, and blank glyphs; bar
    the emoji joiner and presentation selectors, and line breaks in multiline text."""
    refused = _matching(_REFUSED_PROPERTIES) | _BLANK_GLYPHS
    refused -= _EMOJI_PARTS
    if multiline:
        refused -= _LINE_BREAKS
    return refused


@functools.cache
def _combining() -> frozenset[str]:
    return _matching(_COMBINING)


@functools.cache
def _invisible_alone(multiline: bool) -> frozenset[str]:
    """What does not make text visible on its own: anything refused, whitespace,
    marks (they sit on another character) and the emoji parts."""
    return _refused(multiline) | _WHITESPACE | _matching(_MARKS) | _EMOJI_PARTS


_BMP = 0x10000


def _char_class(chars: frozenset[str], *, negate: bool = False) -> str:
    """A regex class of the Basic Multilingual Plane's ``chars`` as \\uXXXX ranges.

    Only the BMP: tools that rewrite a pattern (test generators merging in
    maxLength) write characters beyond it as escapes ECMA-262 cannot read.
    A negated class therefore admits every character beyond the BMP; the
    rules for those are the field's description and the service's own.
    """
    ranges: list[list[int]] = []
    for code in sorted(ord(ch) for ch in chars if ord(ch) < _BMP):
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    body = "".join(f"\\u{lo:04x}" if lo == hi else f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in ranges)
    return f"[{'^' if negate else ''}{body}]"


def _text_pattern(multiline: bool, *, blank: bool) -> str:
    """What ``Text`` accepts in the Basic Multilingual Plane, as a regular
    expression: outer whitespace of any kind around text that starts and ends
    with a character that is neither whitespace nor refused, contains nothing
    refused, and at least one visible character.

    Two rules stay in the field's description instead: beyond the BMP the
    same characters are refused (tags, format controls, variation selectors),
    and at most MAX_COMBINING_RUN combining marks stand in a row. Written out,
    either makes a pattern test generators cannot use.
    """
    refused = _refused(multiline)
    outer = _char_class(_WHITESPACE)
    inner = _char_class(refused, negate=True)
    edge = _char_class(refused | _WHITESPACE, negate=True)
    visible = _char_class(_invisible_alone(multiline), negate=True)
    core = f"(?:{edge}{inner}*)?{visible}(?:{inner}*{edge})?"
    return f"^{outer}*{f'(?:{core})?' if blank else core}{outer}*$"


RULES_BEYOND_THE_PATTERN = (
    "Beyond the Basic Multilingual Plane the same kinds of characters are refused "
    "(tag characters outside a flag's emoji tag sequence, format controls, variation "
    "selectors), and a visible character "
    f"must be one; at most {MAX_COMBINING_RUN} combining marks in a row."
)


class Text(fields.String):
    """A string with outer whitespace removed that people can see: nothing
    invisible or deceptive inside (see ``_refused``), at least one visible
    character, and no stack of combining marks. ``multiline=True`` allows line
    breaks and tabs (descriptions); ``blank=False`` requires text at all. The
    length counts the characters sent, before trimming, so the document's
    maxLength is exact.
    """

    default_error_messages = {
        "control": "Must not contain control, invisible or text-direction characters.",
        "blank": "Must not be blank.",
        "invisible": "Must contain a visible character.",
        "stacked": f"Must not stack more than {MAX_COMBINING_RUN} combining marks.",
        "too_long": "Must be at most {max} characters.",
    }

    def __init__(self, *, max_length: int, multiline: bool = False, blank: bool = True, **kwargs):
        self.refused = _refused(multiline)
        self.invisible_alone = _invisible_alone(multiline)
        self.max_length = max_length
        self.blank = blank
        metadata = {
            "maxLength": max_length,
            "pattern": _text_pattern(multiline, blank=blank),
            **kwargs.pop("metadata", {}),
        }
        description = metadata.get("description")
        metadata["description"] = (
            f"{description} {RULES_BEYOND_THE_PATTERN}" if description else RULES_BEYOND_THE_PATTERN
        )
        if not blank:
            metadata["minLength"] = 1
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        raw = super()._deserialize(value, attr, data, **kwargs)
        if len(raw) > self.max_length:
            raise self.make_error("too_long", max=self.max_length)
        text = raw.strip()
        if any(ch in self.refused for ch in EMOJI_TAG_SEQUENCE.sub("\U0001f3f4", text)):
            raise self.make_error("control")
        if not text:
            if not self.blank:
                raise self.make_error("blank")
            return None  # optional text sent blank is stored, and returned, as null
        if all(ch in self.invisible_alone for ch in text):
            raise self.make_error("invisible")
        run = 0
        for ch in text:
            run = run + 1 if ch in _combining() else 0
            if run > MAX_COMBINING_RUN:
                raise self.make_error("stacked")
        return text


TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"


class UTCDateTime(fields.DateTime):
    """RFC 3339 in UTC, always one shape: whole seconds and ``Z``
    (2026-11-24T10:30:00Z), which every platform's default parser reads
    (Swift's ``.iso8601`` refuses a fraction). Fractions are cut, not rounded:
    a time is never shown later than it is, and expiries are stored in whole
    seconds (app/repository/invites.py), so theirs is exact."""

    def __init__(self, **kwargs):
        metadata = {"pattern": TIMESTAMP_PATTERN, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else utc_timestamp(value)


def utc_timestamp(value: dt.datetime) -> str:
    """``value`` as UTCDateTime writes it: 2026-11-24T10:30:00Z."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
