"""HTTP layer: flask-smorest blueprints, one per resource.

The OpenAPI document is generated from the same schemas that validate, and
from the error classes each view declares with ``documents_errors``, so a
generated client knows every status, its body and the error codes it carries.
"""

from __future__ import annotations

import flask_smorest
from werkzeug.routing import BaseConverter

from app import errors
from app.api.parsing import Parser
from app.api.schemas import ErrorSchema
from app.codes import CODE_INPUT_PATTERN, MAX_INPUT_LENGTH


class Blueprint(flask_smorest.Blueprint):
    """Project blueprint: 400 for invalid input, JSON bodies only."""

    ARGUMENTS_PARSER = Parser()


class IdConverter(BaseConverter):
    """A path id. Matches any segment so a malformed id gets a 400 from the
    view rather than an unhelpful 404 from the router."""


class GroupIdConverter(IdConverter):
    """The id in ``/groups/<group_id>``, which is any segment but ``join``:
    that names ``POST /groups/join``, and ``GET /groups/join`` must be its 405
    (with ``Allow: POST``), not a 400 about a bad group id."""

    regex = r"(?!join\Z)[^/]+"


class CodeConverter(BaseConverter):
    """An invite code in a path, as a person might type it.

    It takes the rest of the path, slashes included, so that `ABC%2F234` or
    a trailing slash is the documented 400 `invalid_code` rather than a
    routing 404 the document does not list."""

    regex = r"[^/][\s\S]*?"  # not ".": a line break in what was typed is a separator
    part_isolating = False


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
    503: {"Retry-After": _RETRY_AFTER},
}
LOCATION = {"Location": _header("The path of the new resource.")}

# An error a view declares: the class, or the class with when this view raises it.
Declared = type[errors.ApiError] | tuple[type[errors.ApiError], str]

# Declarations shared by many views.
INVALID_ID = (errors.ValidationFailed, "A path id is not a UUID.")
INVALID_BODY = (errors.ValidationFailed, "The body or a path id is malformed.")
UNAUTHORIZED = (errors.Unauthorized, "Missing, malformed, expired or wrongly signed token.")
BODY_ERRORS = (
    (errors.PayloadTooLarge, "The body is larger than MAX_CONTENT_LENGTH (16 KiB)."),
    (errors.UnsupportedMediaType, "A body that is not `application/json`."),
)
UNAVAILABLE = (errors.ServiceUnavailable, "The database is unreachable or overloaded.")
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
                schema=ErrorSchema,
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


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema
    # Every status is declared per operation; a catch-all would hide omissions.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_pagination_header(self):
        """Nothing is paginated; keep flask-smorest's unused schema out of the document."""


def init_app(app) -> Api:
    from app.api import document, groups, invites, ops

    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["group_id"] = GroupIdConverter
    app.url_map.converters["code"] = CodeConverter
    api = Api(
        app,
        spec_kwargs={
            "info": {
                "description": (
                    "Invite codes for groups. Owners and admins create, list and revoke "
                    "codes; anyone may preview a code; a signed-in user joins with one.\n\n"
                    "Every error is the envelope `Error`: `{error, message, details?}`. "
                    "`error` is a stable snake_case code; each response lists the codes "
                    "it can carry (also as `x-error-codes`). Clients should treat an "
                    "unknown code like any other error of its status."
                )
            },
            "components": {
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "JWT",
                        "description": "A JWT with `sub` (the user's UUID) and `exp`.",
                    }
                }
            },
            "security": [{"bearerAuth": []}],
        },
    )
    for converter in (IdConverter, GroupIdConverter):
        api.register_converter(
            converter,
            lambda _converter: {
                "type": "string",
                "format": "uuid",
                "example": "3f2c1a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f",
            },
        )
    api.register_converter(
        CodeConverter,
        lambda _converter: {
            "type": "string",
            "maxLength": MAX_INPUT_LENGTH,
            "pattern": CODE_INPUT_PATTERN,
            "example": "ABC-234-XYZ",
        },
    )
    for module in (groups, invites, ops):
        api.register_blueprint(module.blp)
    document.finish(api)
    return api
