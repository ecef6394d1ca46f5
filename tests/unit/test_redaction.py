"""Log redaction: codes and tokens never reach a log line."""

from __future__ import annotations

import logging
import sys

import pytest

from app.logs import RedactingFormatter, redact
from tests.helpers import make_token


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ABC-234-XYZ", "ABC-***-***"),
        ("abc-234-xyz", "abc-***-***"),
        ("code=ABC-123-XYZ.", "code=ABC-***-***."),
        ("GET /api/v1/invites/HJK-MNP-789 404", "GET /api/v1/invites/HJK-***-*** 404"),
        ("two: ABC-234-XYZ and KLM-NPQ-RST", "two: ABC-***-*** and KLM-***-***"),
        ("{'code': 'ABC-234-XYZ'}", "{'code': 'ABC-***-***'}"),
        ("nothing secret here", "nothing secret here"),
        ("uuid 0b4c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d", "uuid 0b4c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d"),
    ],
)
def test_redact_masks_codes(text, expected):
    assert redact(text) == expected


def test_redact_masks_tokens():
    token = make_token(name="Alice")
    assert token.startswith("eyJ")
    assert redact(f"Authorization: Bearer {token}") == "Authorization: Bearer [token]"
    assert redact(f"a {token} b {token}") == "a [token] b [token]"
    assert token not in redact(f"header={token!r}")


def test_the_formatter_redacts_the_message_and_the_traceback():
    formatter = RedactingFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError("bad code ABC-234-XYZ")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "app", logging.ERROR, __file__, 1, "join %s failed", ("HJK-MNP-789",), exc_info
    )
    line = formatter.format(record)
    assert "HJK-***-***" in line
    assert "ABC-***-***" in line
    assert "MNP-789" not in line
    assert "234-XYZ" not in line
