"""Invite codes: generation from a CSPRNG and forgiving normalisation of input."""

from __future__ import annotations

import re
import secrets

# Uppercase letters and digits without the look-alikes 0, O, 1 and I: 32
# symbols, so a code carries 9 * 5 = 45 bits.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
assert len(ALPHABET) == 32  # generate_code takes five bits per symbol
GROUP_LENGTH = 3
GROUPS = 3
CODE_LENGTH = GROUP_LENGTH * GROUPS

# Longest input worth looking at: nine symbols plus generous separators.
MAX_INPUT_LENGTH = 64
_SEPARATORS = re.compile(r"[\s-]+")
_SYMBOLS = re.compile(rf"[A-Z0-9]{{{CODE_LENGTH}}}", re.ASCII)
_ISSUABLE = frozenset(ALPHABET)

# The same rules as regular expressions (ECMA-262 and Python alike), for the
# OpenAPI document. Separators are whatever ``str.isspace`` and ``-`` accept
# in ASCII; symbols exclude the look-alikes in either case.
_SYMBOL_CLASS = "[A-HJ-NP-Z2-9]"
_SEPARATOR_CLASS = r"[\t\n\u000b\f\r\u001c-\u001f -]"
CODE_PATTERN = f"^{_SYMBOL_CLASS}{{3}}-{_SYMBOL_CLASS}{{3}}-{_SYMBOL_CLASS}{{3}}$"
CODE_INPUT_PATTERN = f"^{_SEPARATOR_CLASS}*(?:[A-HJ-NP-Za-hj-np-z2-9]{_SEPARATOR_CLASS}*){{9}}$"


def generate_code() -> str:
    """A fresh code such as ``K7M-2QX-HP9``: each symbol from the low five bits of
    one CSPRNG byte (32 symbols divide 256, so each is equally likely), all
    nine bytes from one read of the system's generator."""
    raw = "".join(ALPHABET[byte & 31] for byte in secrets.token_bytes(CODE_LENGTH))
    return format_code(raw)


def format_code(raw: str) -> str:
    return "-".join(raw[i : i + GROUP_LENGTH] for i in range(0, CODE_LENGTH, GROUP_LENGTH))


def normalise_code(value: object) -> str | None:
    """The canonical ``XXX-XXX-XXX`` form of user input, or None if it cannot be one.

    Case does not matter, dashes and whitespace are optional and outer
    whitespace is ignored: ``" abc 234 xyz "`` is ``ABC-234-XYZ``.
    """
    if not isinstance(value, str) or len(value) > MAX_INPUT_LENGTH or not value.isascii():
        return None
    compact = _SEPARATORS.sub("", value).upper()
    if not _SYMBOLS.fullmatch(compact):
        return None
    return format_code(compact)


def could_be_issued(code: str) -> bool:
    """Whether a normalised code uses only the issuing alphabet (else it cannot exist)."""
    return all(ch in _ISSUABLE for ch in code.replace("-", ""))


def mask_code(code: str) -> str:
    """A code safe to log: the first group only."""
    return code[:GROUP_LENGTH] + "-***-***"
