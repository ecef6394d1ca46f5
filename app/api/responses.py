"""The responses a view declares for the OpenAPI document: every error status,
with its codes, headers and examples, from the same classes the code raises."""

from __future__ import annotations

import json

import flask_smorest
from flask import Response

from app import errors
from app.api.schemas import ApiErrorSchema


def _header(description: str, *, required: bool = True, type_: str = "string") -> dict:
    return {"description": description, "required": required, "schema": {"type": type_}}


_RETRY_AFTER = _header("Seconds to wait before retrying.", type_="integer")
_HEADERS = {
    401: {"WWW-Authenticate": _header("Always `Bearer`.")},
    429: {
        "Retry-After": _RETRY_AFTER,
        "X-RateLimit-Limit": _header("Requests allowed per window.", type_="integer"),
        "X-RateLimit-Remaining": _header("Always 0 on this response.", type_="integer"),
        "X-RateLimit-Reset": _header("When the window resets, in Unix seconds.", type_="integer"),
    },
    409: {
        "Retry-After": _header(
            "Seconds to wait before retrying (with `idempotency_key_in_use`).",
            required=False,
            type_="integer",
        )
    },
    503: {"Retry-After": _RETRY_AFTER},
}
LOCATION = {"Location": _header("The path of the new resource.")}

# An error a view declares: the class, or the class with when this view raises it.
Declared = type[errors.ApiError] | tuple[type[errors.ApiError], str]

# Declarations shared by several views.
INVALID_ID = (errors.ValidationFailed, "A path id is not a UUID.")
INVALID_BODY = (errors.ValidationFailed, "The body or a path id is malformed.")
INVALID_KEYED_BODY = (
    errors.ValidationFailed,
    "The body, a path id or the `Idempotency-Key` header is malformed.",
)
INVALID_CODE = (errors.InvalidCode, "The code can never be an invite code.")
UNAUTHORIZED = (errors.Unauthorized, "Missing, malformed, expired or wrongly signed token.")
FORBIDDEN = (errors.Forbidden, "The caller is a member or viewer; only owners and admins may.")
GROUP_NOT_FOUND = (errors.GroupNotFound, "No such group, or the caller is not a member.")
INVITE_NOT_FOUND = (errors.InviteNotFound, "No such invite in this group.")
CODE_NOT_FOUND = (errors.InviteNotFound, "Unknown or revoked code.")
BODY_ERRORS = (
    (errors.PayloadTooLarge, "The body is larger than MAX_CONTENT_LENGTH (16 KiB)."),
    (errors.UnsupportedMediaType, "A body that is not `application/json`."),
)
UNAVAILABLE = (errors.ServiceUnavailable, "The database is unreachable or overloaded.")
CREATE_LIMITED = (
    errors.RateLimited,
    "CREATE_RATE_LIMIT per user (groups and invites together) was exceeded; see `Retry-After`.",
)
# The operations that take an Idempotency-Key: the parameter (a component the
# spec plugin declares) and what a key can answer.
IDEMPOTENCY_KEY = "IdempotencyKey"
IDEMPOTENCY_ERRORS = (
    (
        errors.IdempotencyKeyInUse,
        "A request with this `Idempotency-Key` is still in progress; see `Retry-After`.",
    ),
    (errors.IdempotencyKeyReused, "This `Idempotency-Key` answered a different request."),
)
_INTERNAL = (errors.ApiError, "A bug. The body never carries details; the log has them.")


def documents_errors(blp: flask_smorest.Blueprint, *declared: Declared):
    """Declare the errors a view can answer, for the OpenAPI document.

    Errors are grouped by status: each response lists its error codes in the
    description, as examples, and as ``x-error-codes`` for tools. Every view
    may also answer 500 ``internal_error``.
    """
    by_status: dict[int, list[tuple[type[errors.ApiError], str]]] = {}
    for item in (*declared, _INTERNAL):
        error, why = item if isinstance(item, tuple) else (item, item.message)
        by_status.setdefault(error.status, []).append((error, why))

    def decorator(view):
        for status, entries in sorted(by_status.items(), reverse=True):
            codes = [error.code for error, _why in entries]
            view = blp.alt_response(
                status,
                schema=ApiErrorSchema,
                description=" ".join(f"`{error.code}`: {why}" for error, why in entries),
                headers=_HEADERS.get(status),
                examples={
                    error.code: {
                        "summary": why,
                        "value": {
                            "error": error.code,
                            "message": error.message,
                            **getattr(error, "example", {}),
                        },
                    }
                    for error, why in entries
                },
            )(view)
            view = blp.doc(responses={status: {"x-error-codes": codes}})(view)
        return view

    return decorator


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    """``status`` with ``body``, already in its wire shape, written as ``jsonify``
    writes it. flask-smorest passes a Response through as it is, so the view keeps
    its documented schema and skips the schema's dump (the hot responses: see
    InvitePreviewSchema.wire)."""
    return Response(
        json.dumps(body, separators=(",", ":")) + "\n",
        status=status,
        headers=headers,
        mimetype="application/json",
    )
