"""Logging for the whole process: one format for gunicorn's lines and the service's,
UTC timestamps, and redaction so codes and tokens never reach a log.

``LOG_FORMAT=text`` (the default) is for people; ``json`` writes one JSON object
per line for a log shipper, through python-json-logger (it renders extras,
exceptions and stack traces as fields; the redaction runs over every string
value it is about to write).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time

from gunicorn.glogging import Logger as GunicornBaseLogger
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from app.codes import mask_code

# Anything shaped like an invite code or a bearer token, wherever it stands
# (a code glued to other text, "GK7M-2QX-HP9", is masked too).
_CODE_LIKE = re.compile(r"[A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3}", re.IGNORECASE)
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    text = _JWT_LIKE.sub("[token]", text)
    return _CODE_LIKE.sub(lambda m: mask_code(m.group(0)), text)


def utc_timestamp(created: float) -> str:
    """RFC 3339 in UTC with milliseconds: 2026-11-24T10:30:00.123Z."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{whole}.{int(created % 1 * 1000):03d}Z"


TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    """Text lines with UTC timestamps; the whole rendered line is redacted,
    traceback included."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_timestamp(record.created)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time, level, logger, message, pid, and any extras
    (the request line's fields); every string value redacted."""

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message", "process"],
            rename_fields={
                "asctime": "time",
                "levelname": "level",
                "name": "logger",
                "process": "pid",
                "exc_info": "exception",
            },
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_timestamp(record.created)

    def process_log_record(self, log_data: dict) -> dict:
        return {k: redact(v) if isinstance(v, str) else v for k, v in log_data.items()}


def make_formatter(log_format: str = "text") -> logging.Formatter:
    """The formatter for ``LOG_FORMAT``; anything but ``json`` is text."""
    return JsonFormatter() if log_format == "json" else RedactingFormatter(TEXT_FORMAT)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """The root logger writes to stderr in ``log_format``; Python's warnings go there too."""
    root = logging.getLogger()
    root.setLevel(level)
    logging.captureWarnings(True)
    handler = next((h for h in root.handlers if getattr(h, "is_service_handler", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.is_service_handler = True
        root.addHandler(handler)
    handler.setFormatter(make_formatter(log_format))


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
        from app.config import log_format_from_env

        super().setup(cfg)
        log_format = log_format_from_env()
        for handler in self.error_log.handlers:
            handler.setFormatter(make_formatter(log_format))
        # The master's own modules (the embedded servers, migrations) log through the root.
        configure_logging(cfg.loglevel.upper(), log_format)

    def warning(self, msg, *args, **kwargs) -> None:
        if isinstance(msg, str):
            msg = _REFUSED_REQUEST.sub(r"\1: refused as malformed; what it sent is not logged", msg)
        super().warning(msg, *args, **kwargs)
