"""Path parameters: the URL converters, and ids handed to views as UUIDs."""

from __future__ import annotations

import functools
import re
import uuid

import flask_smorest
from flask import Flask
from werkzeug.routing import BaseConverter

from app.api.auth import auth_required
from app.codes import CODE_INPUT_PATTERN, MAX_INPUT_LENGTH
from app.errors import ValidationFailed

_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


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


_UUID_PARAMETER = {
    "type": "string",
    "format": "uuid",
    "example": "3f2c1a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f",
}
_CODE_PARAMETER = {
    "type": "string",
    "maxLength": MAX_INPUT_LENGTH,
    "pattern": CODE_INPUT_PATTERN,
    "example": "ABC-234-XYZ",
}
# Name in routes, converter, and how the OpenAPI document describes its parameter.
CONVERTERS = (
    ("id", IdConverter, _UUID_PARAMETER),
    ("group_id", GroupIdConverter, _UUID_PARAMETER),
    ("code", CodeConverter, _CODE_PARAMETER),
)


def register_converters(app: Flask, api: flask_smorest.Api) -> None:
    for name, converter, parameter in CONVERTERS:
        app.url_map.converters[name] = converter
        api.register_converter(converter, lambda _converter, parameter=parameter: dict(parameter))


def parse_id(value: str, field: str) -> uuid.UUID:
    """A path id (canonical 8-4-4-4-12 UUID) as a UUID, or a 400 naming the parameter."""
    if not _CANONICAL_UUID.fullmatch(value):
        raise ValidationFailed.from_details([{"field": field, "message": "Not a valid UUID."}])
    return uuid.UUID(value)


def path_ids(view):
    """Hand the view its ``<id:...>`` path parameters as UUIDs."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        return view(
            *args, **{k: parse_id(v, k) if k.endswith("_id") else v for k, v in kwargs.items()}
        )

    return wrapper


# MethodView.decorators for authenticated resources: the token is checked
# first (the last decorator listed is the outermost), then the path ids.
AUTHENTICATED = [path_ids, auth_required]
