"""Every error becomes the contract's envelope: ``{error, message, details?}``."""

from __future__ import annotations

import logging
import math
import time

import sqlalchemy.exc
from flask import Flask, current_app, g, jsonify, request
from flask_limiter.errors import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from app.errors import ApiError, RateLimited, ServiceUnavailable
from app.limiter import limiter

log = logging.getLogger("app.errors")

# Codes for plain HTTP errors raised by Flask/Werkzeug (routing, size limits).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    429: "rate_limited",
    431: "headers_too_large",
}


def envelope(status: int, code: str, message: str, details: list | None = None):
    body: dict = {"error": code, "message": message}
    if details:
        body["details"] = details
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def error_response(error: ApiError):
    response = envelope(error.status, error.code, error.message, error.details)
    if error.status == 503:
        response.headers["Retry-After"] = "5"
    return response


def _handle_api_error(error: ApiError):
    return error_response(error)


def _handle_rate_limited(error: RateLimitExceeded):
    response = envelope(RateLimited.status, RateLimited.code, RateLimited.message)
    limit = limiter.current_limit
    retry_after = 60
    if limit is not None:
        window = limit.limit.get_expiry()
        retry_after = min(window, max(1, math.ceil(limit.reset_at - time.time())))
        response.headers["X-RateLimit-Limit"] = str(limit.limit.amount)
        response.headers["X-RateLimit-Remaining"] = "0"
        response.headers["X-RateLimit-Reset"] = str(int(limit.reset_at))
    response.headers["Retry-After"] = str(retry_after)
    return response


def _handle_http_exception(error: HTTPException):
    status = error.code or 500
    if status >= 500:
        return _handle_unexpected(error)
    message = error.description or error.name
    if status == 404:
        message = "No such endpoint."
    elif status == 405:
        message = "This endpoint does not support that method."
    elif status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        message = f"The request body is larger than {limit} bytes."
    response = envelope(status, HTTP_CODES.get(status, "http_error"), message)
    if status == 405 and error.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
    return response


def _handle_database_unavailable(error: sqlalchemy.exc.SQLAlchemyError):
    log.error(
        "database unavailable: %s request_id=%s",
        type(getattr(error, "orig", None) or error).__name__,
        g.get("request_id"),
        exc_info=error,
    )
    return error_response(ServiceUnavailable())


def _handle_unexpected(error: Exception):
    original = getattr(error, "original_exception", None) or error
    log.error(
        "unhandled %s in %s %s request_id=%s",
        type(original).__name__,
        request.method,
        request.url_rule.rule if request.url_rule else "<unmatched>",
        g.get("request_id"),
        exc_info=original,
    )
    return envelope(ApiError.status, ApiError.code, ApiError.message)


def init_app(app: Flask) -> None:
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(RateLimitExceeded, _handle_rate_limited)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(sqlalchemy.exc.OperationalError, _handle_database_unavailable)
    app.register_error_handler(sqlalchemy.exc.InterfaceError, _handle_database_unavailable)
    # No pooled connection came free in time: overloaded, not broken.
    app.register_error_handler(sqlalchemy.exc.TimeoutError, _handle_database_unavailable)
    app.register_error_handler(Exception, _handle_unexpected)
