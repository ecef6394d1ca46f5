"""Rate limits (Flask-Limiter). Limits and storage come from the app config."""

from __future__ import annotations

import uuid

from flask import current_app
from flask_jwt_extended import get_jwt_identity
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

# The client address is what ProxyFix derived from the trusted proxies only
# (TRUSTED_PROXY_COUNT), never a raw X-Forwarded-For.
limiter = Limiter(
    key_func=get_remote_address,
    # If Redis is unreachable keep limiting per process rather than failing requests.
    in_memory_fallback_enabled=True,
    headers_enabled=False,
)


def lookup_limit() -> str:
    return current_app.config["INVITE_LOOKUP_RATE_LIMIT"]


def join_limit() -> str:
    return current_app.config["JOIN_RATE_LIMIT"]


def user_key() -> str:
    """Per authenticated user; the token was verified before the limit is checked."""
    return f"user:{uuid.UUID(get_jwt_identity())}"
