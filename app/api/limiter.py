"""Rate limits and the guessing budget, from the app config.

Moving windows: ``5/minute`` admits at most five requests in any 60 seconds,
so a client cannot get twice the limit by straddling a window boundary. The
windows are shared by every worker and replica through Redis (the embedded
one unless RATELIMIT_STORAGE_URI names another), behind ``app.limit_store``,
which keeps counting per process while Redis is unreachable.

Every limit a request meets is checked, and spent, in one call to the store
(one Redis round trip): a lookup meets its own limit and both guessing
budgets, a join the caller's join limit and both budgets. A refused request
spends nothing. The budgets are spent after the answer, and only by a failed
lookup (a 404), in a second call that only such requests make.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, g, request
from limits import RateLimitItem, parse_many

from app.errors import RateLimited
from app.limit_store import LimitStore, Window

budget_log = logging.getLogger("app.guessing")


def client_address() -> str:
    """What ProxyFix derived from the trusted proxies only (TRUSTED_PROXY_COUNT),
    never a raw X-Forwarded-For."""
    return request.remote_addr or "127.0.0.1"


def client_network() -> str:
    """The client's /24 (IPv4) or /64 (IPv6): one budget for a block of addresses."""
    return _network_of(client_address())


@functools.lru_cache(maxsize=4096)
def _network_of(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"other:{address}"
    if ip.version == 6 and ip.ipv4_mapped:  # a dual-stack socket's view of IPv4
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def user_key() -> str:
    """Per authenticated user; the token was verified before the limit is checked."""
    return f"user:{uuid.UUID(g.user_id)}"


@dataclass(frozen=True)
class Rule:
    name: str  # rate_limited_total{limit=...}
    setting: str  # the config key of its limits
    identity: Callable[[], str]
    scope: str | None = None  # None: each endpoint counts apart
    failures_only: bool = False  # spent by failed lookups, after the answer


LOOKUP = Rule("lookup", "INVITE_LOOKUP_RATE_LIMIT", client_address)
JOIN = Rule("join", "JOIN_RATE_LIMIT", user_key, scope="join")
# One budget per user for creating groups and invites together.
CREATE = Rule("create", "CREATE_RATE_LIMIT", user_key, scope="create")
# Failed lookups (previews and joins of codes that name no live invite) are
# budgeted per address and per network, together for both endpoints: the
# arithmetic of how many live codes a guesser can find is docs/security.md.
FAILURES = Rule("lookup_failures", "LOOKUP_FAILURE_LIMIT", client_address, "lookup-failures", True)
NETWORK_FAILURES = Rule(
    "lookup_failures_network",
    "NETWORK_LOOKUP_FAILURE_LIMIT",
    client_network,
    "lookup-failures-network",
    True,
)
GUESSING_BUDGET = (FAILURES, NETWORK_FAILURES)
LIMIT_NAMES = tuple(rule.name for rule in (LOOKUP, JOIN, CREATE, *GUESSING_BUDGET))


class LimitExceeded(RateLimited):
    """429, with the limit that refused and when it admits again."""

    def __init__(self, rule: Rule, item: RateLimitItem, reset_at: float):
        super().__init__()
        self.rule, self.item, self.reset_at = rule, item, reset_at
        seconds = item.get_expiry()
        self.retry_after = min(seconds, max(1, math.ceil(reset_at - time.time())))

    @property
    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.item.amount),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(self.reset_at)),
        }


class Limits:
    """The app's limits (parsed once) and their store (``app.extensions["limits"]``)."""

    def __init__(self, app: Flask):
        self.prefix = app.config["RATELIMIT_KEY_PREFIX"]
        self.items = {
            rule.setting: tuple(parse_many(app.config[rule.setting]))
            for rule in (LOOKUP, JOIN, CREATE, *GUESSING_BUDGET)
        }
        self.store = LimitStore(
            app.config["RATELIMIT_STORAGE_URI"],
            timeout_s=app.config["RATELIMIT_STORAGE_TIMEOUT_MS"] / 1000,
        )
        # A caller's windows are the same on each of its requests: they are made
        # once per (rule, endpoint, caller) while the caller is among the recent.
        self._windows = functools.lru_cache(maxsize=8192)(self._make_windows)

    def windows(self, rules: tuple[Rule, ...]) -> list[tuple[Rule, RateLimitItem, str, Window]]:
        """(rule, limit, whom it counts, window) for each limit of ``rules``."""
        out = []
        for rule in rules:
            out += self._windows(rule, rule.scope or request.endpoint, rule.identity())
        return out

    def _make_windows(self, rule: Rule, scope: str, identity: str) -> tuple:
        return tuple(
            (
                rule,
                item,
                identity,
                Window(
                    item.key_for(self.prefix, scope, identity),
                    item.amount,
                    item.get_expiry(),
                    not rule.failures_only,
                ),
            )
            for item in self.items[rule.setting]
        )

    def admit(self, rules: tuple[Rule, ...]) -> None:
        """Spend one hit of each rule's limits, or raise LimitExceeded; the guessing
        budgets are only checked here, and spent by ``settle`` after a failed lookup."""
        windows = self.windows(rules)
        breaches = self.store.gate([window for *_, window in windows])
        if breaches:
            for breach in breaches:
                rule, item, identity, window = windows[breach.index]
                if rule.failures_only:
                    _budget_spent(item, identity, window.key)
            # The one that admits last: waiting for it is enough for all.
            last = max(breaches, key=lambda b: b.reset_at)
            rule, item, *_ = windows[last.index]
            raise LimitExceeded(rule, item, last.reset_at)
        budget = [window for rule, *_, window in windows if rule.failures_only]
        if budget:
            g.guessing_budget = budget

    def settle(self, status: int) -> None:
        """After the answer: a failed lookup spends the guessing budget."""
        budget = g.pop("guessing_budget", None)
        if budget and status == 404:
            self.store.charge(budget)


def current() -> Limits:
    return current_app.extensions["limits"]


def limited(*rules: Rule):
    """Decorate a view: ``rules`` are checked (and spent) before it runs."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            current().admit(rules)
            return view(*args, **kwargs)

        return wrapper

    return decorate


lookup_limited = limited(LOOKUP, *GUESSING_BUDGET)
join_limited = limited(JOIN, *GUESSING_BUDGET)
create_limited = limited(CREATE)


def init_app(app: Flask) -> None:
    limits = app.extensions["limits"] = Limits(app)

    @app.after_request
    def _settle(response):
        limits.settle(response.status_code)
        return response


_reported_breaches: dict[str, float] = {}
_BREACH_LOG_INTERVAL_S = 600


def _budget_spent(item: RateLimitItem, identity: str, key: str) -> None:
    """One log line per exhausted budget per ten minutes, not one per refused request."""
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
            item,
            identity,
        )
