"""Liveness, readiness."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app
from flask.views import MethodView

from app.api.base import Blueprint
from app.api.database import get_engine
from app.api.responses import documents_errors
from app.api.schemas import HealthSchema
from app.errors import ServiceUnavailable

blp = Blueprint("ops", __name__, description="Operations: health checks.")
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
    @blp.response(200, HealthSchema, description="Ready to serve.")
    @blp.doc(operationId="getReadiness", security=[])
    @documents_errors(blp, (ServiceUnavailable, "The database cannot be reached."))
    def get(self):
        """The database is reachable"""
        try:
            with get_engine().connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            current_app.extensions["db_availability"].failed(exc)
            raise ServiceUnavailable("The database is not reachable.") from None
        return {"status": "ok"}
