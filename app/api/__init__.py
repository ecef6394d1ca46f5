"""HTTP layer: flask-smorest blueprints, one per resource."""

from __future__ import annotations

import flask_smorest
from werkzeug.routing import BaseConverter

from app.api.parsing import Parser
from app.api.schemas import ErrorSchema


class Blueprint(flask_smorest.Blueprint):
    """Project blueprint: 400 for invalid input, JSON bodies only."""

    ARGUMENTS_PARSER = Parser()


class IdConverter(BaseConverter):
    """A path id. Matches any segment so a malformed id gets a 400 from the
    view rather than an unhelpful 404 from the router."""


_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Always `Bearer`.", "schema": {"type": "string"}}},
    429: {
        "Retry-After": {
            "description": "Seconds until the limit resets.",
            "schema": {"type": "integer"},
        }
    },
    503: {
        "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}},
    },
}

# Statuses any JSON-body endpoint can answer, and any database-backed one.
BODY_ERRORS = (
    (413, "`payload_too_large`: the body is larger than MAX_CONTENT_LENGTH."),
    (415, "`unsupported_media_type`: a body that is not application/json."),
)
UNAVAILABLE = (503, "`service_unavailable`: the database is unreachable or overloaded.")
INVALID = (400, "`validation_error`: the body or a path id is malformed.")
UNAUTHORIZED = (401, "Missing, malformed, expired or wrongly signed token.")


def documents_errors(blp: flask_smorest.Blueprint, *errors: tuple[int, str]):
    """Declare the error statuses a view can answer, for the OpenAPI document."""

    def decorator(view):
        for status, description in reversed(errors):
            view = blp.alt_response(
                status,
                schema=ErrorSchema,
                description=description,
                headers=_HEADERS.get(status),
            )(view)
        return view

    return decorator


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema


def init_app(app) -> Api:
    from app.api import groups, invites, ops

    app.url_map.converters["id"] = IdConverter
    api = Api(
        app,
        spec_kwargs={
            "info": {
                "description": (
                    "Invite codes for groups. Owners and admins create, list and revoke "
                    "codes; anyone may preview a code; a signed-in user joins with one. "
                    "Every error uses the envelope `{error, message, details?}`."
                )
            },
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                }
            },
            "security": [{"bearerAuth": []}],
        },
    )
    api.register_converter(IdConverter, lambda _converter: {"type": "string", "format": "uuid"})
    for module in (groups, invites, ops):
        api.register_blueprint(module.blp)
    return api
