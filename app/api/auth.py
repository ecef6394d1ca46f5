"""Bearer-token verification with flask-jwt-extended.

Tokens are issued by another service. We accept only the configured
algorithm, require ``sub`` (a UUID) and ``exp``, refuse refresh tokens, and
answer every failure with the 401 envelope.
"""

from __future__ import annotations

import functools
import re
import uuid

from flask import Flask, g, request
from flask_jwt_extended import JWTManager, get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import NoAuthorizationError

from app.services import Actor

# Failures become the 401 envelope through this manager's loaders (app.api.errors).
jwt = JWTManager()

MAX_DISPLAY_NAME = 100


@jwt.token_verification_loader
def _claims_acceptable(_header: dict, claims: dict) -> bool:
    if not isinstance(claims.get("exp"), int | float) or isinstance(claims.get("exp"), bool):
        return False
    if "refresh" in (claims.get("type"), claims.get("token_type")):
        return False
    return _parse_subject(claims.get("sub")) is not None


def _parse_subject(sub: object) -> uuid.UUID | None:
    if not isinstance(sub, str):
        return None
    try:
        return uuid.UUID(sub)
    except ValueError:
        return None


def _display_name(claim: object) -> str | None:
    """The optional ``name`` claim, tidied; junk is ignored rather than refused."""
    if not isinstance(claim, str):
        return None
    name = "".join(ch for ch in claim if ch.isprintable()).strip()
    return name[:MAX_DISPLAY_NAME] or None


_BEARER_ANY_CASE = re.compile(r"^\s*bearer(?=\s)", re.IGNORECASE)


def init_app(app: Flask) -> None:
    jwt.init_app(app)


def current_actor() -> Actor:
    """The verified caller of this request."""
    claims = get_jwt()
    return Actor(id=uuid.UUID(claims["sub"]), display_name=_display_name(claims.get("name")))


def _has_blank_credential(value: str) -> bool:
    return any(not part.strip() for part in value.strip().strip(",").split(","))


def auth_required(view):
    """Require a valid bearer token before anything else about the request is looked at."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        # An auth scheme is case-insensitive (RFC 9110 11.1); flask-jwt-extended
        # only knows "Bearer", so "bearer <token>" would otherwise be a 401.
        value = request.environ.get("HTTP_AUTHORIZATION")
        if value and _BEARER_ANY_CASE.match(value):
            request.environ["HTTP_AUTHORIZATION"] = _BEARER_ANY_CASE.sub("Bearer", value, count=1)
        if value and _has_blank_credential(value):
            # flask-jwt-extended reads the first word of each comma-separated
            # credential and fails with an IndexError on a blank one (", ,").
            raise NoAuthorizationError("A blank credential in the Authorization header")
        verify_jwt_in_request()
        g.user_id = get_jwt()["sub"]  # for the request's log line
        return view(*args, **kwargs)

    return wrapper
