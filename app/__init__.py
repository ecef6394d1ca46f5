"""The group invites service."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import auth, config, db, request_log
from app.api import docs_assets
from app.api import errors as api_errors
from app.api import init_app as init_api
from app.limiter import limiter


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment, with ``overrides`` on top (tests)."""
    app = Flask(__name__)
    app.config.update(config.from_env())
    app.config.update(
        API_TITLE="Group invites",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        # Swagger UI's files are served by the service itself: /docs works offline.
        OPENAPI_SWAGGER_UI_URL=docs_assets.URL_PREFIX,
    )
    if overrides:
        app.config.update(overrides)
    config.validate(app.config)
    local_base_url = config.local_base_url(
        os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
    )
    app.config["APP_BASE_URL"] = (app.config["APP_BASE_URL"] or local_base_url).rstrip("/")
    app.json.sort_keys = False  # fields in the order the schemas declare them
    # "//" in a path would otherwise be a 308 redirect with an HTML body.
    app.url_map.merge_slashes = False

    request_log.configure_logging(app.config.get("LOG_LEVEL", "INFO"))
    if app.config["TRUSTED_PROXY_COUNT"]:
        n = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    app.extensions["db_engine"] = db.create_engine(
        app.config["DATABASE_URL"],
        pool_size=app.config["DB_POOL_SIZE"],
        statement_timeout_ms=app.config["DB_STATEMENT_TIMEOUT_MS"],
        pool_timeout_s=app.config["DB_POOL_TIMEOUT_S"],
    )
    request_log.init_app(app)
    auth.init_app(app)
    limiter.init_app(app)
    init_api(app)
    docs_assets.init_app(app)
    # After flask-smorest, whose own HTTPException handler ours replaces.
    api_errors.init_app(app)
    return app
