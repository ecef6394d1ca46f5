"""Bearer-token verification with flask-jwt-extended.

Tokens are issued by another service. We accept only the configured
algorithm, require ``sub`` (a UUID) and ``exp``, refuse refresh tokens, and
answer every failure with the 401 envelope.
"""

from __future__ import annotations

import functools
import re
import threading
import time
import uuid
from collections.abc import Mapping
from types import MappingProxyType

import flask_jwt_extended
from flask import Flask, current_app, g, request
from flask_jwt_extended import get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import NoAuthorizationError

from app.services import Actor

# Tokens remembered as verified, per app (VerifiedTokens).
VERIFIED_TOKENS_MAX = 4096


class VerifiedTokens:
    """Claims of tokens that passed every check, kept while they are unexpired, at
    most ``size`` of them (the oldest remembered goes first).

    A client sends the same access token with each request until it expires.
    Checking it again each time costs flask-jwt-extended about 40 µs of CPU with
    HS256 when the signature's result is cached and three decodes (about 120 µs)
    when not, more with RS256 or ES256. A token that passed every check
    (``auth_required``) is remembered by its exact text, per app (so per key,
    algorithm, issuer, audience and leeway), and its ``exp`` is checked on every
    use. A token that failed, or has no ``exp``, takes the full path every time,
    as does every token after it is evicted, and any header that is not exactly
    ``Bearer <token>``.
    """

    def __init__(self, leeway_s: float, size: int = VERIFIED_TOKENS_MAX):
        self.leeway_s, self.size = leeway_s, size
        self._claims: dict[str, tuple[int, Mapping]] = {}  # token: (int(exp), claims)
        self._lock = threading.Lock()

    def get(self, token: str) -> Mapping | None:
        found = self._claims.get(token)
        # PyJWT's rule: expired when int(exp) <= now - leeway (a fraction is cut).
        if found is not None and found[0] > time.time() - self.leeway_s:
            return found[1]
        return None

    def put(self, token: str, claims: dict) -> None:
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            return
        with self._lock:
            if token not in self._claims and len(self._claims) >= self.size:
                del self._claims[next(iter(self._claims))]
            self._claims[token] = (int(exp), MappingProxyType(dict(claims)))  # a copy


# Failures become the 401 envelope through this manager's loaders (app.api.errors).
jwt = flask_jwt_extended.JWTManager()

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
# "Bearer <token>" and nothing else: the one form whose token is looked up among
# the remembered ones (flask-jwt-extended would take the same token from it).
_PLAIN_BEARER = re.compile(r"Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")


def _plain_bearer(value: str | None) -> str | None:
    match = _PLAIN_BEARER.fullmatch(value) if value else None
    return match[1] if match else None


def init_app(app: Flask) -> None:
    jwt.init_app(app)
    app.extensions["verified_tokens"] = VerifiedTokens(app.config["JWT_DECODE_LEEWAY"])


def current_actor() -> Actor:
    """The verified caller of this request."""
    claims = g.token_claims
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
            value = _BEARER_ANY_CASE.sub("Bearer", value, count=1)
            request.environ["HTTP_AUTHORIZATION"] = value
        token = _plain_bearer(value)
        verified: VerifiedTokens = current_app.extensions["verified_tokens"]
        claims = verified.get(token) if token else None
        if claims is None:
            if value and _has_blank_credential(value):
                # flask-jwt-extended reads the first word of each comma-separated
                # credential and fails with an IndexError on a blank one (", ,").
                raise NoAuthorizationError("A blank credential in the Authorization header")
            verify_jwt_in_request()
            claims = MappingProxyType(dict(get_jwt()))
            if token:
                verified.put(token, claims)
        # The claims, read-only, the same on either path. flask-jwt-extended's own
        # request state is not set on the fast path: read g.token_claims (or
        # current_actor, g.user_id), never get_jwt() or get_jwt_identity().
        g.token_claims = claims
        g.user_id = claims["sub"]  # for the request's log line
        return view(*args, **kwargs)

    return wrapper
