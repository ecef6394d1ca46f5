"""The invite page, ``GET /join/{code}``: what ``invite_url`` points to.

A person who opens an invite link in a browser, and a chat app that unfurls it,
get server-rendered HTML: the group's name, icon and member count, the role
offered and when it expires, a button that opens the app (APP_DEEP_LINK) and
the code to type in by hand. It is built on the same service call as
``GET /api/v1/invites/{code}`` (``app.services.invites.preview_invite``), under
the same lookup limit and the same guessing budget, so the two never disagree.

Errors are decided where every error is, ``app.api.errors``: the page hands any
exception to the app's error handlers and renders their envelope's status and
code as a page (with its Retry-After), instead of sending the JSON.

``/.well-known/assetlinks.json`` and ``/.well-known/apple-app-site-association``
come from ANDROID_APP_PACKAGE + ANDROID_CERT_SHA256 and APPLE_APP_IDS, so phones
with the app open it directly; each is a 404 when unconfigured.

Plain Flask routes, not flask-smorest ones: HTML for browsers is not part of the
OpenAPI document. INVITE_PAGE=off leaves /join/... unrouted (the JSON 404), for a
deployment whose own web app serves it.
"""

from __future__ import annotations

import datetime as dt
import functools
import math

from flask import Flask, Response, current_app, render_template
from werkzeug.exceptions import NotFound

from app.api.database import code_keys, read
from app.api.limiter import lookup_limited
from app.codes import normalise_code
from app.config import cert_fingerprints, deep_link, split_list
from app.services import invites as invite_service

ENDPOINT = "invite_page"
ASSETLINKS_PATH = "/.well-known/assetlinks.json"
APPLE_ASSOCIATION_PATH = "/.well-known/apple-app-site-association"
APP_LINK_PATHS = ["/join/*"]
APP_LINK_MAX_AGE_S = 3600

# The page loads its stylesheet from this service and nothing else; no script runs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The code is in the URL: no other site learns it from a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
# Headers of the error envelope that a page keeps.
_KEPT_HEADERS = ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
ROLES = {"member": "a member", "admin": "an admin"}
DEFAULT_ICON = "👥"


def utc_in_words(moment: dt.datetime) -> str:
    """``24 November 2026, 10:30 UTC``."""
    moment = moment.astimezone(dt.UTC)
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}, {moment:%H:%M} UTC"


def duration_in_words(seconds: float, *, approximate: bool = False) -> str:
    """``45 seconds``, ``3 minutes``, ``5 hours``, ``2 days``: one unit, rounded up
    (how long to wait: never too short), or to the nearest when ``approximate``."""
    seconds = max(1.0, seconds)
    units = (("day", 86400, 1.5), ("hour", 3600, 1.5), ("minute", 60, 1), ("second", 1, 0))
    unit, size = next((unit, size) for unit, size, least in units if seconds >= size * least)
    count = max(1, round(seconds / size) if approximate else math.ceil(seconds / size))
    return f"{'about ' if approximate else ''}{count} {unit}{'s' if count != 1 else ''}"


def _page(template: str, http_status: int, **context) -> Response:
    html = render_template(f"invite_page/{template}", **context)
    response = Response(html, status=http_status, content_type="text/html; charset=utf-8")
    response.headers.update(PAGE_HEADERS)
    return response


# The errors a page has its own words for (templates/invite_page/error.html); any other
# reads as "something went wrong".
PAGE_ERRORS = frozenset({"invalid_code", "invite_not_found", "rate_limited", "service_unavailable"})


def _error_page(envelope: Response) -> Response:
    """The page for an error ``app.api.errors`` answered: its status, code and headers."""
    code = (envelope.get_json(silent=True) or {}).get("error")
    retry_after = envelope.headers.get("Retry-After", "")
    wait = duration_in_words(int(retry_after)) if retry_after.isdigit() else None
    response = _page(
        "error.html",
        envelope.status_code,
        error=code if code in PAGE_ERRORS else "unexpected",
        retry_after=wait,
    )
    for name in _KEPT_HEADERS:
        if name in envelope.headers:
            response.headers[name] = envelope.headers[name]
    return response


def html_errors(view):
    """Errors of ``view`` (the rate limits' included) as pages, not the JSON envelope."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        # Not swallowed: handed to the app's error handlers (app.api.errors), which
        # decide the status, code, headers and logging, exactly as for the API.
        except Exception as exc:  # noqa: BLE001
            envelope = current_app.make_response(current_app.handle_user_exception(exc))
            return _error_page(envelope)

    return wrapper


@html_errors
@lookup_limited
def invite_page(code: str):
    preview = read(invite_service.preview_invite, code, keys=code_keys())
    # The service accepted it, so it normalises; the page shows it as issued.
    canonical = normalise_code(code)
    group = preview["group"]
    context = {
        "code": canonical,
        "group_name": group["name"],
        "icon": group["icon_emoji"] or DEFAULT_ICON,
        "member_count": group["member_count"],
        "page_url": f"{current_app.config['APP_BASE_URL']}/join/{canonical}",
    }
    if preview["status"] != "active":
        return _page("gone.html", 410, status=preview["status"], **context)
    expires_at = preview["expires_at"]
    template = current_app.config.get("APP_DEEP_LINK")
    return _page(
        "invite.html",
        200,
        role=ROLES.get(preview["preset_role"], preview["preset_role"]),
        expires=utc_in_words(expires_at),
        expires_iso=expires_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        expires_in=duration_in_words(
            (expires_at - dt.datetime.now(dt.UTC)).total_seconds(), approximate=True
        ),
        app_link=deep_link(template, canonical) if template else None,
        **context,
    )


def _app_link_file(document) -> Response:
    if document is None:
        raise NotFound()
    response = current_app.json.response(document)
    response.headers["Cache-Control"] = f"public, max-age={APP_LINK_MAX_AGE_S}"
    return response


def assetlinks():
    """Digital Asset Links: Android opens /join/... links in the app."""
    config = current_app.config
    package, certs = config.get("ANDROID_APP_PACKAGE"), config.get("ANDROID_CERT_SHA256")
    document = None
    if package and certs:
        document = [
            {
                "relation": ["delegate_permission/common.handle_all_urls"],
                "target": {
                    "namespace": "android_app",
                    "package_name": package,
                    "sha256_cert_fingerprints": cert_fingerprints(certs),
                },
            }
        ]
    return _app_link_file(document)


def apple_app_site_association():
    """Universal links: iOS opens /join/... links in the app."""
    app_ids = split_list(current_app.config.get("APPLE_APP_IDS"))
    document = None
    if app_ids:
        document = {
            "applinks": {
                # iOS 13 and later read appIDs and components, earlier ones appID and
                # paths: each app gets one entry in both spellings.
                "apps": [],
                "details": [
                    {
                        "appIDs": [app_id],
                        "components": [{"/": path} for path in APP_LINK_PATHS],
                        "appID": app_id,
                        "paths": APP_LINK_PATHS,
                    }
                    for app_id in app_ids
                ],
            }
        }
    return _app_link_file(document)


def init_app(app: Flask) -> None:
    app.add_url_rule(ASSETLINKS_PATH, endpoint="assetlinks", view_func=assetlinks)
    app.add_url_rule(
        APPLE_ASSOCIATION_PATH,
        endpoint="apple_app_site_association",
        view_func=apple_app_site_association,
    )
    if app.config["INVITE_PAGE"] == "on":
        app.add_url_rule("/join/<code:code>", endpoint=ENDPOINT, view_func=invite_page)
