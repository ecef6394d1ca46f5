"""``GET /metrics`` and the counting behind it, one call per request.

``/metrics`` answers only to client addresses in ``METRICS_ALLOW`` (loopback
by default), judged on the address trusted through ``TRUSTED_PROXY_COUNT``: a
request relayed by the public gateway is judged by its real client, so a
scraper reaches each instance directly. Anyone else gets the 404 of an
unknown path. It is not in the OpenAPI document: it is not for API clients,
and a generated SDK method that answers them 404 would mislead.
"""

from __future__ import annotations

import ipaddress
import os
import re

from flask import Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from werkzeug.exceptions import NotFound

from app import metrics
from app.api.idempotency import REPLAYED_HEADER
from app.api.limiter import LIMIT_NAMES

JOIN_ENDPOINT = "groups.join"
CREATE_INVITE_ENDPOINT = "invites.group_invites"
JOINED = "joined"
# A refused join's outcome, by its error code.
JOIN_REFUSALS = {
    "already_member": "already_member",
    "invite_expired": "expired",
    "invite_exhausted": "exhausted",
    "invite_not_found": "not_found",
    "invalid_code": "invalid_code",
}
UNMATCHED = "<unmatched>"

_CONVERTER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_templates: dict[str, str] = {}


def route_template(rule: str | None) -> str:
    """The OpenAPI path of a Flask rule: /api/v1/invites/<code:code> is /api/v1/invites/{code}."""
    if rule is None:
        return UNMATCHED
    template = _templates.get(rule)
    if template is None:
        template = _templates[rule] = _CONVERTER.sub(r"{\1}", rule)
    return template


def observe(req, ctx, method: str, route: str, status: int, seconds: float, response) -> None:
    """Count one answered request (``req`` and ``ctx``: the request and its ``g``)."""
    key = (method, route, status)
    children = _children.get(key)
    if children is None:
        children = _children[key] = (
            metrics.HTTP_REQUESTS.labels(method, route, str(status)),
            metrics.HTTP_DURATION.labels(method, route),
        )
    children[0].inc()
    children[1].observe(seconds)
    if status == 429:
        metrics.RATE_LIMITED.labels(ctx.get("rate_limit") or "other").inc()
    if method != "POST" or response.headers.get(REPLAYED_HEADER):
        return  # the work was counted when it was done
    endpoint = req.endpoint
    if endpoint == JOIN_ENDPOINT:
        outcome = JOINED if status == 200 else JOIN_REFUSALS.get(ctx.get("error_code"))
        if outcome is not None:
            metrics.INVITE_JOINS.labels(outcome).inc()
    elif endpoint == CREATE_INVITE_ENDPOINT and status == 201:
        metrics.INVITES_CREATED.inc()


# (method, route, status): its request counter and duration histogram. Routes
# are templates and methods a fixed set, so this stays small.
_children: dict[tuple[str, str, int], tuple] = {}


def _allowed(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in current_app.config["METRICS_ALLOW"])


def _exposition():
    if not _allowed(request.remote_addr):
        raise NotFound()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.add_url_rule("/metrics", endpoint="metrics", view_func=_exposition, methods=["GET"])
    # Every known label value is there from the start, at 0: a rate() over a
    # series that appears only on its first event misses that event.
    for outcome in (JOINED, *JOIN_REFUSALS.values()):
        metrics.INVITE_JOINS.labels(outcome)
    for name in LIMIT_NAMES:
        metrics.RATE_LIMITED.labels(name)
    # The pool may open as many connections again as overflow (app.db).
    metrics.watch_pool(app.extensions["db_engine"], app.config["DB_POOL_SIZE"] * 2)
