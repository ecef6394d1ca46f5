"""/api/v1/groups: create a group, read it, and join one with a code."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView

from app import errors
from app.api.auth import current_actor
from app.api.base import Blueprint
from app.api.database import code_keys, read, run
from app.api.idempotency import idempotent
from app.api.limiter import create_limited, join_limited
from app.api.paths import AUTHENTICATED
from app.api.responses import (
    BODY_ERRORS,
    CODE_NOT_FOUND,
    CREATE_LIMITED,
    GROUP_NOT_FOUND,
    IDEMPOTENCY_ERRORS,
    IDEMPOTENCY_KEY,
    INVALID_CODE,
    INVALID_ID,
    INVALID_KEYED_BODY,
    LOCATION,
    UNAUTHORIZED,
    UNAVAILABLE,
    documents_errors,
    json_response,
)
from app.api.schemas import GroupCreateSchema, GroupSchema, JoinResultSchema, JoinSchema
from app.services import groups as group_service
from app.services import invites as invite_service

blp = Blueprint(
    "groups", __name__, url_prefix="/api/v1/groups", description="Groups, and joining them."
)

# Where a new group's id leads (OpenAPI links: generated clients and stateful fuzzing).
_GROUP_LINKS = {
    name: {"operationId": operation, "parameters": {"group_id": "$response.body#/id"}}
    for name, operation in (
        ("getGroup", "getGroup"),
        ("createInvite", "createInvite"),
        ("listInvites", "listInvites"),
    )
}


@blp.route("", endpoint="groups")
class Groups(MethodView):
    decorators = AUTHENTICATED

    @create_limited
    @idempotent()
    @blp.arguments(GroupCreateSchema())
    @blp.response(201, GroupSchema, headers=LOCATION, description="The new group.")
    @blp.doc(
        operationId="createGroup",
        parameters=[IDEMPOTENCY_KEY],
        responses={201: {"links": _GROUP_LINKS}},
    )
    @documents_errors(
        blp,
        INVALID_KEYED_BODY,
        UNAUTHORIZED,
        *IDEMPOTENCY_ERRORS,
        *BODY_ERRORS,
        CREATE_LIMITED,
        UNAVAILABLE,
    )
    def post(self, body):
        """Create a group; the caller becomes its owner"""
        group = run(group_service.create_group, current_actor(), **body)
        return group, 201, {"Location": url_for("groups.group", group_id=group["id"])}


@blp.route("/<group_id:group_id>", endpoint="group")
class GroupById(MethodView):
    decorators = AUTHENTICATED

    @blp.response(200, GroupSchema, description="The group.")
    @blp.doc(operationId="getGroup")
    @documents_errors(blp, INVALID_ID, UNAUTHORIZED, GROUP_NOT_FOUND, UNAVAILABLE)
    def get(self, group_id):
        """A group, as one of its members sees it"""
        return read(group_service.get_group, current_actor(), group_id)


@blp.route("/join", endpoint="join")
class Join(MethodView):
    decorators = AUTHENTICATED

    @join_limited
    @idempotent(attempts=invite_service.JOIN_ATTEMPTS, give_up=errors.InviteBusy, autocommit=True)
    @blp.arguments(JoinSchema())
    @blp.response(200, JoinResultSchema, description="The caller is now a member.")
    @blp.doc(operationId="joinGroup", parameters=[IDEMPOTENCY_KEY])
    @documents_errors(
        blp,
        INVALID_CODE,
        (
            errors.ValidationFailed,
            "The body is malformed (`code` missing or not a string), "
            "or the `Idempotency-Key` header is.",
        ),
        UNAUTHORIZED,
        CODE_NOT_FOUND,
        (errors.AlreadyMember, "The caller is in the group already; no use is taken."),
        *IDEMPOTENCY_ERRORS,
        (errors.InviteExpired, "The invite has expired."),
        (errors.InviteExhausted, "Every use of the invite has been taken."),
        *BODY_ERRORS,
        (
            errors.RateLimited,
            "JOIN_RATE_LIMIT per user was exceeded, or the failed-lookup budget of the "
            "client's address or network is spent; see `Retry-After`.",
        ),
        (errors.ServiceUnavailable, "The database is unavailable, or the invite is too busy."),
    )
    def post(self, body):
        """Join a group with an invite code

        The use is taken and the membership created in one transaction: however
        many requests race, exactly `max_uses` of them succeed.
        """
        joined = run(invite_service.join_group, current_actor(), body["code"], keys=code_keys())
        return json_response(JoinResultSchema.wire(joined))
