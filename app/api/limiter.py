"""Rate limits (Flask-Limiter). Limits and storage come from the app config.

A moving window: ``5/minute`` admits at most five requests in any 60 seconds,
so a client cannot get twice the limit by straddling a window boundary. The
counters are shared by every worker and replica through Redis (the embedded
one unless RATELIMIT_STORAGE_URI names another), behind ``app.limit_store``,
which keeps counting per process while Redis is unreachable.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import uuid

from flask import Flask, current_app, request
from flask_jwt_extended import get_jwt_identity
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from redis.backoff import NoBackoff
from redis.retry import Retry

from app import limit_store

# The client address is what ProxyFix derived from the trusted proxies only
# (TRUSTED_PROXY_COUNT), never a raw X-Forwarded-For.
limiter = Limiter(key_func=get_remote_address, headers_enabled=False, strategy="moving-window")
budget_log = logging.getLogger("app.guessing")


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


# What rate_limited_total{limit} calls each limit (by scope, else by endpoint).
LIMIT_NAMES = {
    "create": "create",
    "lookup-failures": "lookup_failures",
    "lookup-failures-network": "lookup_failures_network",
    "invites.invite_preview": "lookup",
    "invite_page": "lookup",
    "groups.join": "join",
}


def limit_name(request_limit) -> str:
    """The name of the limit a refused request met."""
    scope = request_limit.request_args[-1] if request_limit is not None else None
    return LIMIT_NAMES.get(scope) or LIMIT_NAMES.get(request.endpoint) or "other"


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


# --- the guessing budget (docs/security.md) ---------------------------------------------


def client_network() -> str:
    """The client's /24 (IPv4) or /64 (IPv6): one budget for a block of addresses."""
    address = get_remote_address()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"other:{address}"
    if ip.version == 6 and ip.ipv4_mapped:  # a dual-stack socket's view of IPv4
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def failure_limit() -> str:
    return current_app.config["LOOKUP_FAILURE_LIMIT"]


def network_failure_limit() -> str:
    return current_app.config["NETWORK_LOOKUP_FAILURE_LIMIT"]


def _failed_lookup(response) -> bool:
    """A code that names no live invite: what a guesser mostly gets."""
    return response.status_code == 404


_reported_breaches: dict[str, float] = {}
_BREACH_LOG_INTERVAL_S = 600


def _budget_spent(request_limit) -> None:
    """One log line per exhausted budget per ten minutes, not one per refused request."""
    key = "/".join(str(part) for part in request_limit.key.split("/")[-2:])
    now = time.monotonic()
    if now - _reported_breaches.get(key, -_BREACH_LOG_INTERVAL_S) >= _BREACH_LOG_INTERVAL_S:
        # Forget quiet keys, or an attacker with many addresses grows this for good.
        for stale in [
            k for k, at in _reported_breaches.items() if now - at >= _BREACH_LOG_INTERVAL_S
        ]:
            del _reported_breaches[stale]
        _reported_breaches[key] = now
        budget_log.warning(
            "guessing budget spent: %s failed lookups from %s; its lookups are refused "
            "until the window moves",
            request_limit.limit,
            key,
        )


# Failed lookups (previews and joins of codes that name no live invite) are
# budgeted per address and per network, together for both endpoints: the
# arithmetic of how many live codes a guesser can find is docs/security.md.
guessing_budget = [
    limiter.shared_limit(
        failure_limit,
        scope="lookup-failures",
        deduct_when=_failed_lookup,
        on_breach=_budget_spent,
    ),
    limiter.shared_limit(
        network_failure_limit,
        scope="lookup-failures-network",
        key_func=client_network,
        deduct_when=_failed_lookup,
        on_breach=_budget_spent,
    ),
]


def within_guessing_budget(view):
    for limit in reversed(guessing_budget):
        view = limit(view)
    return view
