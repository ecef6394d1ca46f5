"""Logging for the whole process, redacted so codes and tokens never reach a log."""

from __future__ import annotations

import logging
import re
import sys

from app.codes import mask_code

# Anything shaped like an invite code or a bearer token.
_CODE_LIKE = re.compile(r"\b[A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3}\b", re.IGNORECASE)
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    text = _JWT_LIKE.sub("[token]", text)
    return _CODE_LIKE.sub(lambda m: mask_code(m.group(0)), text)


class RedactingFormatter(logging.Formatter):
    """Redacts the whole rendered line, traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    root.setLevel(level)
    if any(isinstance(h.formatter, RedactingFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
