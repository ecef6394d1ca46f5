"""Rate limits (Flask-Limiter). Limits and storage come from the app config.

A moving window: ``5/minute`` admits at most five requests in any 60 seconds,
so a client cannot get twice the limit by straddling a window boundary. The
counters are shared by every worker and replica through Redis (the embedded
one unless RATELIMIT_STORAGE_URI names another), behind ``app.limit_store``,
which keeps counting per process while Redis is unreachable.
"""

from __future__ import annotations

import uuid

from flask import Flask, current_app
from flask_jwt_extended import get_jwt_identity
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from redis.backoff import NoBackoff
from redis.retry import Retry

from app import limit_store

# The client address is what ProxyFix derived from the trusted proxies only
# (TRUSTED_PROXY_COUNT), never a raw X-Forwarded-For.
limiter = Limiter(key_func=get_remote_address, headers_enabled=False, strategy="moving-window")


def init_app(app: Flask) -> None:
    store = app.config["RATELIMIT_STORAGE_URI"]
    if not store.startswith("memory://"):
        timeout = app.config["RATELIMIT_STORAGE_TIMEOUT_MS"] / 1000
        app.config["RATELIMIT_STORAGE_URI"] = f"{limit_store.SCHEME}://"
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {
            "backend": store,
            # A Redis that stops answering costs one request this long, once a
            # second, not redis-py's default of retries with backoff.
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
        }
    limiter.init_app(app)


def lookup_limit() -> str:
    return current_app.config["INVITE_LOOKUP_RATE_LIMIT"]


def join_limit() -> str:
    return current_app.config["JOIN_RATE_LIMIT"]


def create_limit() -> str:
    return current_app.config["CREATE_RATE_LIMIT"]


def user_key() -> str:
    """Per authenticated user; the token was verified before the limit is checked."""
    return f"user:{uuid.UUID(get_jwt_identity())}"


# One budget per user for creating groups and invites together.
create_limited = limiter.shared_limit(create_limit, scope="create", key_func=user_key)
