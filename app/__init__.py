"""The group invites service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment, with ``overrides`` on top (tests).

    Imported here, not above: the gunicorn master imports modules of this
    package (logging, start-up) and must not make the workers' metrics
    (``app.metrics``) before it has chosen their directory.
    """
    from app import api, config, db
    from app.api.base import App
    from app.code_keys import CodeKeyring

    app = App(__name__)
    app.config.update(config.load(overrides))
    app.extensions["db_engine"] = db.create_engine(
        app.config["DATABASE_URL"],
        pool_size=app.config["DB_POOL_SIZE"],
        statement_timeout_ms=app.config["DB_STATEMENT_TIMEOUT_MS"],
        pool_timeout_s=app.config["DB_POOL_TIMEOUT_S"],
    )
    app.extensions["db_availability"] = db.Availability(app.extensions["db_engine"])
    app.extensions["code_keys"] = CodeKeyring.parse(app.config["CODE_KEYS"])
    api.init_app(app)
    return app
