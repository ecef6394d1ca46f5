"""HTTP layer: flask-smorest blueprints, one per resource, and everything that imports Flask.

The OpenAPI document is generated from the same schemas that validate, and
from the error classes each view declares with ``documents_errors``, so a
generated client knows every status, its body and the error codes it carries.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app.api import (
    auth,
    docs_assets,
    errors,
    groups,
    invite_page,
    invites,
    limiter,
    metrics,
    ops,
    request_log,
)
from app.api.base import Api
from app.api.paths import register_converters

API_DESCRIPTION = (
    "Invite codes for groups. Owners and admins create, list and revoke "
    "codes; anyone may preview a code; a signed-in user joins with one.\n\n"
    "Every error is the envelope `ApiError`: `{error, message, details?}`. "
    "`error` is a stable snake_case code; each response lists the codes "
    "it can carry (also as `x-error-codes`). Clients should treat an "
    "unknown code like any other error of its status."
)
BEARER_AUTH = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A JWT with `sub` (the user's UUID) and `exp`.",
}

DOCUMENT_CONFIG = {
    "API_TITLE": "Group invites",
    "API_VERSION": "1.0.0",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    # Swagger UI's files are served by the service itself: /docs works offline.
    "OPENAPI_SWAGGER_UI_URL": docs_assets.URL_PREFIX,
}


def init_app(app: Flask) -> Api:
    """Attach the HTTP layer to ``app``: request handling, the API and its document."""
    for name, value in DOCUMENT_CONFIG.items():
        app.config.setdefault(name, value)
    app.json.sort_keys = False  # fields in the order the schemas declare them
    # "//" in a path would otherwise be a 308 redirect with an HTML body.
    app.url_map.merge_slashes = False
    if app.config["TRUSTED_PROXY_COUNT"]:
        n = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    request_log.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    limiter.init_app(app)
    api = Api(
        app,
        spec_kwargs={
            "info": {"description": API_DESCRIPTION},
            "components": {"securitySchemes": {"bearerAuth": BEARER_AUTH}},
            "security": [{"bearerAuth": []}],
            # Where this deployment answers; the checked-in copy has app.api.document's.
            "servers": [{"url": app.config["APP_BASE_URL"]}],
        },
    )
    register_converters(app, api)
    for module in (groups, invites, ops):
        api.register_blueprint(module.blp)
    docs_assets.init_app(app)
    invite_page.init_app(app)
    metrics.init_app(app)
    return api
