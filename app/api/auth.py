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

import flask_jwt_extended
from flask import Flask, current_app, g, request
from flask_jwt_extended import get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import NoAuthorizationError

from app.services import Actor

# Tokens remembered as verified, per app (VerifiedTokens).
VERIFIED_TOKENS_MAX = 4096


class JWTManager(flask_jwt_extended.JWTManager):
    """flask-jwt-extended, remembering the tokens it has verified.

    A client sends the same access token with each request until it expires.
    Verifying it again each time costs flask-jwt-extended three decodes: about
    120 µs of CPU with HS256, more with RS256 or ES256. A token that passed
    verification is remembered by its exact text, per app (so per key,
    algorithm, issuer, audience and leeway). It is used for as long as it has
    not expired, and its ``exp`` is checked on every use. A token that failed,
    or has no ``exp``, takes the full path every time, as does every token
    after it is evicted. Everything after decoding (our claim checks, the
    identity) runs on every request as before.
    """

    def _decode_jwt_from_config(self, encoded_token, csrf_value=None, allow_expired=False):
        if csrf_value is not None or allow_expired:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        verified: VerifiedTokens = current_app.extensions["verified_tokens"]
        claims = verified.get(encoded_token)
        if claims is None:
            claims = super()._decode_jwt_from_config(encoded_token)
            verified.put(encoded_token, claims)
        return dict(claims)


class VerifiedTokens:
    """Claims of verified tokens while they are unexpired, at most ``size`` of them
    (the oldest remembered goes first)."""

    def __init__(self, leeway_s: float, size: int = VERIFIED_TOKENS_MAX):
        self.leeway_s, self.size = leeway_s, size
        self._claims: dict[str, tuple[int, dict]] = {}  # token: (int(exp), claims)
        self._lock = threading.Lock()

    def get(self, token: str) -> dict | None:
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
            self._claims[token] = (int(exp), claims)


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
    app.extensions["verified_tokens"] = VerifiedTokens(app.config["JWT_DECODE_LEEWAY"])


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
