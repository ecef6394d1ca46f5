"""One log line per request, with its request id, counted in the metrics too; the
response headers every answer carries."""

from __future__ import annotations

import logging
import os
import re
import time

from flask import Flask, g, request

from app.api.metrics import observe, route_template
from app.logs import configure_logging

log = logging.getLogger("app.request")

# An incoming X-Request-ID is kept only when it looks like this; else a new one.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
# A method is client text too ("GK7M2QXHP9 /" reaches the app): only known ones are logged.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


def init_app(app: Flask) -> None:
    configure_logging(app.config.get("LOG_LEVEL", "INFO"), app.config.get("LOG_FORMAT", "text"))

    # A request id is chosen by the gateway, never by a client: one a client
    # chose could carry a code or a token into every log line of the request.
    trust_incoming = app.config["TRUSTED_PROXY_COUNT"] > 0

    @app.before_request
    def _start():
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "") if trust_incoming else ""
        g.request_id = incoming if _REQUEST_ID.match(incoming) else os.urandom(16).hex()

    @app.after_request
    def _finish(response):
        # The request and g once each, not through their proxies at every use.
        req, ctx = request._get_current_object(), g._get_current_object()
        request_id = ctx.get("request_id") or os.urandom(16).hex()
        headers = response.headers
        headers["X-Request-ID"] = request_id
        headers.setdefault("Cache-Control", "no-store")
        headers["X-Content-Type-Options"] = "nosniff"
        status = response.status_code
        if status == 204:
            headers.pop("Content-Type", None)
        started = ctx.get("started")
        seconds = time.perf_counter() - started if started else 0.0
        # The route template, never the raw path: /api/v1/invites/{code}.
        route = route_template(req.url_rule.rule if req.url_rule else None)
        method = req.method if req.method in _METHODS else "OTHER"
        observe(req, ctx, method, route, status, seconds, response)
        error = ctx.get("error_code")
        user = ctx.get("user_id")
        client = req.remote_addr
        log.info(
            "%s %s %s %.1fms request_id=%s client=%s user=%s%s",
            method,
            route,
            status,
            seconds * 1000,
            request_id,
            client or "-",
            user or "-",
            f" error={error}" if error else "",
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
                "request_id": request_id,
                "client": client,
                "user_id": user,
                "error": error,
            },
        )
        return response
