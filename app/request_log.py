"""One log line per request, and redaction so codes and tokens never reach a log."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import Flask, g, request

log = logging.getLogger("app.request")

# An incoming X-Request-ID is kept only when it looks like this; else a new one.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
# Anything shaped like an invite code or a bearer token.
_CODE_LIKE = re.compile(r"\b([A-Z0-9]{3})-[A-Z0-9]{3}-[A-Z0-9]{3}\b", re.IGNORECASE)
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    text = _JWT_LIKE.sub("[token]", text)
    return _CODE_LIKE.sub(lambda m: m.group(1) + "-***-***", text)


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


def init_app(app: Flask) -> None:
    @app.before_request
    def _start():
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _finish(response):
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        if response.status_code == 204:
            response.headers.pop("Content-Type", None)
        started = g.get("started")
        duration_ms = (time.perf_counter() - started) * 1000 if started else 0.0
        # The route template, never the raw path: /api/v1/invites/<code>.
        route = request.url_rule.rule if request.url_rule else "<unmatched>"
        log.info(
            "%s %s %s %.1fms request_id=%s",
            request.method,
            route,
            response.status_code,
            duration_ms,
            request_id,
        )
        return response
