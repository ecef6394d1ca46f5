"""Liveness, readiness."""

from __future__ import annotations

import functools
import logging

import sqlalchemy as sa
from flask import current_app
from flask.views import MethodView

from app.api import limiter
from app.api.base import Blueprint
from app.api.database import get_engine
from app.api.responses import documents_errors
from app.api.schemas import HealthSchema, ReadinessSchema
from app.errors import ServiceUnavailable
from app.migrate import discover, pending

blp = Blueprint("ops", __name__, description="Operations: liveness and readiness.")
log = logging.getLogger(__name__)


@blp.route("/healthz", endpoint="healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema, description="Alive.")
    @blp.doc(operationId="getHealth", security=[])
    @documents_errors(blp)
    def get(self):
        """The process is alive (does not touch the database)"""
        return {"status": "ok"}


@blp.route("/readyz", endpoint="readyz")
class Ready(MethodView):
    @blp.response(200, ReadinessSchema, description="Ready to serve; what each check found.")
    @blp.doc(operationId="getReadiness", security=[])
    @documents_errors(
        blp,
        (
            ServiceUnavailable,
            "Not ready: the database cannot be reached, or its migrations are not "
            "current. `details` names each check that failed (`field`: `database` or "
            "`migrations`).",
        ),
    )
    def get(self):
        """The database answers, its migrations are current; the rate-limit store is reported"""
        failed = []
        try:
            with get_engine().connect() as conn:
                missing = pending(conn, _release_migrations())
        except sa.exc.SQLAlchemyError as exc:
            current_app.extensions["db_availability"].failed(exc)
            failed.append({"field": "database", "message": "The database cannot be reached."})
        else:
            if missing:
                failed.append(
                    {
                        "field": "migrations",
                        "message": f"{len(missing)} migration(s) of this release not applied.",
                    }
                )
        if failed:
            raise ServiceUnavailable(
                "Not ready: " + ", ".join(item["field"] for item in failed) + ".",
                details=failed,
            )
        store = "ok" if limiter.current().store.check() else "degraded"
        return {
            "status": "ok",
            "checks": {"database": "ok", "migrations": "ok", "rate_limit_store": store},
        }


@functools.cache
def _release_migrations() -> list[str]:
    return [m.version for m in discover()]
