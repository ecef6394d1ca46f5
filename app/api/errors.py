"""Every error becomes the contract's envelope, ``{error, message, details?}``, here
and nowhere else: domain errors, HTTP errors (through flask-smorest's
``handle_http_exception``, see ``app.api.base.Api``), token failures (through
flask-jwt-extended's loaders), rate limits, an unavailable database, and bugs."""

from __future__ import annotations

import logging

import sqlalchemy.exc
from flask import Flask, current_app, g, jsonify, request
from jwt.exceptions import PyJWTError
from werkzeug.exceptions import HTTPException

from app.api.auth import jwt
from app.api.limiter import LimitExceeded
from app.errors import ApiError, ServiceUnavailable, Unauthorized

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
    g.error_code = code  # for the request's log line
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def error_response(error: ApiError):
    response = envelope(error.status, error.code, error.message, error.details)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _unauthorized(*_reason: object):
    """Any token failure flask-jwt-extended reports: one 401, no detail about why."""
    return error_response(Unauthorized())


def _rate_limited(error: LimitExceeded):
    g.rate_limit = error.rule.name  # for the metrics
    response = error_response(error)
    response.headers.update(error.headers)
    return response


def http_error_response(error: HTTPException):
    """Routing, method, size and rate-limit errors; flask-smorest's hook calls this."""
    status = error.code or 500
    if status >= 500:
        return _unexpected(error)
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


def _database_unavailable(error: sqlalchemy.exc.SQLAlchemyError):
    """503. No traceback: the outage is logged once (app.db.Availability), and each
    request's own line carries ``error=service_unavailable``."""
    current_app.extensions["db_availability"].failed(error)
    return error_response(ServiceUnavailable())


def _unexpected(error: Exception):
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


for _loader in (
    jwt.unauthorized_loader,
    jwt.invalid_token_loader,
    jwt.expired_token_loader,
    jwt.revoked_token_loader,
    jwt.needs_fresh_token_loader,
    jwt.token_verification_failed_loader,
    jwt.user_lookup_error_loader,
):
    _loader(_unauthorized)


def init_app(app: Flask) -> None:
    # Each handler catches a class no library registers for, so the order of
    # registration never matters.
    app.register_error_handler(ApiError, error_response)
    app.register_error_handler(LimitExceeded, _rate_limited)
    # PyJWT errors that flask-jwt-extended has no loader for (a key PyJWT refuses).
    app.register_error_handler(PyJWTError, _unauthorized)
    app.register_error_handler(sqlalchemy.exc.OperationalError, _database_unavailable)
    app.register_error_handler(sqlalchemy.exc.InterfaceError, _database_unavailable)
    # No pooled connection came free in time: overloaded, not broken.
    app.register_error_handler(sqlalchemy.exc.TimeoutError, _database_unavailable)
    app.register_error_handler(Exception, _unexpected)
