"""/api/v1/groups: create a group, read it, and join one with a code."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView

from app.api import (
    BODY_ERRORS,
    INVALID,
    UNAUTHORIZED,
    UNAVAILABLE,
    Blueprint,
    documents_errors,
)
from app.api.paths import AUTHENTICATED
from app.api.schemas import GroupCreateSchema, GroupSchema, JoinResultSchema, JoinSchema
from app.auth import current_actor
from app.db import get_engine
from app.limiter import join_limit, limiter, user_key
from app.services import groups as group_service
from app.services import invites as invite_service

blp = Blueprint(
    "groups", __name__, url_prefix="/api/v1/groups", description="Groups, and joining them."
)

GROUP_NOT_FOUND = (404, "`group_not_found`: no such group, or the caller is not a member.")


@blp.route("", endpoint="groups")
class Groups(MethodView):
    decorators = AUTHENTICATED

    @blp.arguments(GroupCreateSchema)
    @blp.response(201, GroupSchema, headers={"Location": {"schema": {"type": "string"}}})
    @documents_errors(blp, INVALID, UNAUTHORIZED, *BODY_ERRORS, UNAVAILABLE)
    def post(self, body):
        """Create a group; the caller becomes its owner"""
        group = group_service.create_group(get_engine(), current_actor(), **body)
        return group, 201, {"Location": url_for("groups.group", group_id=group["id"])}


@blp.route("/<id:group_id>", endpoint="group")
class GroupById(MethodView):
    decorators = AUTHENTICATED

    @blp.response(200, GroupSchema)
    @documents_errors(blp, INVALID, UNAUTHORIZED, GROUP_NOT_FOUND, UNAVAILABLE)
    def get(self, group_id):
        """A group, as one of its members sees it"""
        return group_service.get_group(get_engine(), current_actor(), group_id)


@blp.route("/join", endpoint="join")
class Join(MethodView):
    decorators = AUTHENTICATED

    @limiter.limit(join_limit, key_func=user_key)
    @blp.arguments(JoinSchema)
    @blp.response(200, JoinResultSchema)
    @documents_errors(
        blp,
        (400, "`invalid_code` (cannot be a code) or `validation_error`."),
        UNAUTHORIZED,
        (404, "`invite_not_found`: unknown or revoked code."),
        (409, "`already_member`: the caller is in the group already; no use is taken."),
        (410, "`invite_expired` or `invite_exhausted`."),
        *BODY_ERRORS,
        (429, "`rate_limited` (JOIN_RATE_LIMIT per user); see `Retry-After`."),
        (503, "`service_unavailable`: the database is unavailable, or the invite is busy."),
    )
    def post(self, body):
        """Join a group with an invite code

        The use is taken and the membership created in one transaction: however
        many requests race, exactly `max_uses` of them succeed.
        """
        return invite_service.join_group(get_engine(), current_actor(), body["code"])
