"""Field types for the schemas: text people will see, times in UTC, integers from JSON."""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata

from marshmallow import fields, validate


def between(low: int, high: int) -> validate.Range:
    return validate.Range(min=low, max=high, error="Must be between {min} and {max}.")


def json_integer(**kwargs) -> fields.Integer:
    """A JSON integer: ``"5"``, ``5.5``, ``5.0`` and ``true`` are refused."""
    return fields.Integer(strict=True, error_messages={"invalid": "Must be an integer."}, **kwargs)


# Characters that reorder text (bidi overrides, isolates, marks): in a group
# name shown on a public preview they are a spoofing tool, never a need.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e") | frozenset(
    "\u2066\u2067\u2068\u2069"
)
# The zero-width joiner is a format character that emoji sequences need.
_EMOJI_JOINER = "\u200d"
_LINE_BREAKS = frozenset("\t\n\r")


@functools.cache
def _refused(multiline: bool) -> frozenset[str]:
    """Characters refused inside text: control characters (bar line breaks in
    multiline text), format characters such as zero-width spaces, soft hyphens
    and bidi overrides (bar the emoji joiner), line and paragraph separators.

    Only the Basic Multilingual Plane is policed, so the rule is also a regular
    expression that means the same in ECMA-262 and Python (the OpenAPI
    document carries it); the few format characters beyond it are emoji tags
    and rare script controls, none of them invisible spacing or reordering.
    """
    refused = set(_BIDI_CONTROLS)
    for code in range(0x10000):
        ch = chr(code)
        category = unicodedata.category(ch)
        if category == "Cc":
            refuse = not (multiline and ch in _LINE_BREAKS)
        else:
            refuse = category in {"Zl", "Zp"} or (category == "Cf" and ch != _EMOJI_JOINER)
        if refuse:
            refused.add(ch)
    return frozenset(refused)


def _char_class(chars: frozenset[str], *, negate: bool = False) -> str:
    """A regex class of ``chars`` as \\uXXXX ranges (valid in ECMA-262 and Python)."""
    ranges: list[list[int]] = []
    for code in sorted(ord(ch) for ch in chars):
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    body = "".join(
        f"\\u{low:04x}" if low == high else f"\\u{low:04x}-\\u{high:04x}" for low, high in ranges
    )
    return f"[{'^' if negate else ''}{body}]"


# What str.strip() removes: every whitespace character (none lie beyond the BMP).
_WHITESPACE = frozenset(chr(code) for code in range(0x10000) if chr(code).isspace())


def _text_pattern(refused: frozenset[str], *, blank: bool) -> str:
    """Outer whitespace of any kind, around text that starts and ends visibly
    and contains nothing refused: exactly what ``Text`` accepts."""
    outer = _char_class(_WHITESPACE)
    inner = _char_class(refused, negate=True)
    visible = _char_class(refused | _WHITESPACE, negate=True)
    core = f"{visible}(?:{inner}*{visible})?"
    return f"^{outer}*{f'(?:{core})?' if blank else core}{outer}*$"


class Text(fields.String):
    """A string with outer whitespace removed and nothing invisible or deceptive
    inside (see ``_refused``). ``multiline=True`` allows line breaks and tabs
    (descriptions); ``blank=False`` requires a visible character. The length
    counts the characters sent, before trimming, so the document's maxLength
    is exact.
    """

    default_error_messages = {
        "control": "Must not contain control, invisible or text-direction characters.",
        "blank": "Must not be blank.",
        "too_long": "Must be at most {max} characters.",
    }

    def __init__(self, *, max_length: int, multiline: bool = False, blank: bool = True, **kwargs):
        self.refused = _refused(multiline)
        self.max_length = max_length
        self.blank = blank
        metadata = {
            "maxLength": max_length,
            "pattern": _text_pattern(self.refused, blank=blank),
            **kwargs.pop("metadata", {}),
        }
        if not blank:
            metadata["minLength"] = 1
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        raw = super()._deserialize(value, attr, data, **kwargs)
        if len(raw) > self.max_length:
            raise self.make_error("too_long", max=self.max_length)
        text = raw.strip()
        if any(ch in self.refused for ch in text):
            raise self.make_error("control")
        if not text and not self.blank:
            raise self.make_error("blank")
        return text


class UTCDateTime(fields.DateTime):
    """RFC 3339 in UTC with an explicit offset."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
