"""HTTP layer: flask-smorest blueprints, one per resource."""

from __future__ import annotations

import re
import uuid

import flask_smorest
from werkzeug.routing import BaseConverter

from app.api.parsing import Parser, validation_error
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


_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def parse_id(value: str, field: str) -> uuid.UUID:
    """A path id (canonical 8-4-4-4-12 UUID) as a UUID, or a 400 naming the parameter."""
    if not _CANONICAL_UUID.fullmatch(value):
        raise validation_error([{"field": field, "message": "Not a valid UUID."}])
    return uuid.UUID(value)


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
