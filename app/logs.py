"""Logging for the whole process, redacted so codes and tokens never reach a log."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time

from gunicorn.glogging import Logger as GunicornBaseLogger

from app.codes import mask_code

# Anything shaped like an invite code or a bearer token, wherever it stands
# (a code glued to other text, "GK7M-2QX-HP9", is masked too).
_CODE_LIKE = re.compile(r"[A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3}", re.IGNORECASE)
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


class OutageLog:
    """One warning when a dependency stops answering, one line when it answers again.

    Per process: every request in between is answered without a word here
    (its own request line carries its error code), so an outage costs two
    log lines per worker rather than a traceback per request.
    """

    def __init__(self, what: str, where: str, *, meanwhile: str, after: str, logger=None):
        self.what, self.where = what, where
        self.meanwhile, self.after = meanwhile, after
        self.log = logger or logging.getLogger("app.outages")
        self._lock = threading.Lock()
        self._since: float | None = None

    @property
    def is_down(self) -> bool:
        return self._since is not None

    def began(self, error: BaseException) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else "no detail"
        self.log.warning(
            "%s unreachable (%s: %s: %s): %s",
            self.what,
            self.where,
            type(error).__name__,
            reason,
            self.meanwhile,
        )

    def ended(self) -> None:
        if self._since is None:
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            self.log.warning(
                "%s reachable again (%s) after %.1f s: %s",
                self.what,
                self.where,
                time.monotonic() - since,
                self.after,
            )


# gunicorn's warning for a request it refuses quotes what the client sent (a
# request line, a header): text that may hold a code or a token in any shape.
_REFUSED_REQUEST = re.compile(r"^(Invalid request from ip=\S+): .*", re.DOTALL)


class GunicornLogger(GunicornBaseLogger):
    """gunicorn's own lines (``logger_class``): through the same redaction as the
    service's, and its refused-request warnings without the client's text."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(RedactingFormatter(self.error_fmt, self.datefmt))

    def warning(self, msg, *args, **kwargs) -> None:
        if isinstance(msg, str):
            msg = _REFUSED_REQUEST.sub(r"\1: refused as malformed; what it sent is not logged", msg)
        super().warning(msg, *args, **kwargs)
