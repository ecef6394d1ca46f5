"""Invites: managed by a group's owner and admins, previewed by anyone."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView

from app import errors
from app.api.auth import current_actor
from app.api.base import Blueprint
from app.api.database import code_keys, read, run
from app.api.idempotency import idempotent
from app.api.limiter import create_limited, lookup_limited
from app.api.paths import AUTHENTICATED
from app.api.responses import (
    BODY_ERRORS,
    CODE_NOT_FOUND,
    CREATE_LIMITED,
    FORBIDDEN,
    GROUP_NOT_FOUND,
    IDEMPOTENCY_ERRORS,
    IDEMPOTENCY_KEY,
    INVALID_CODE,
    INVALID_ID,
    INVALID_KEYED_BODY,
    INVITE_NOT_FOUND,
    LOCATION,
    UNAUTHORIZED,
    UNAVAILABLE,
    documents_errors,
    json_response,
)
from app.api.schemas import (
    InviteCreateSchema,
    InviteDetailSchema,
    InviteListSchema,
    InvitePreviewSchema,
    InviteSchema,
    RedemptionListSchema,
)
from app.services import invites as invite_service

blp = Blueprint("invites", __name__, url_prefix="/api/v1", description="Invite codes.")

# What the caller of every invite-scoped view may hear, in order.
MANAGING = (INVALID_ID, UNAUTHORIZED, FORBIDDEN, GROUP_NOT_FOUND, INVITE_NOT_FOUND, UNAVAILABLE)

_THIS_INVITE = {"group_id": "$response.body#/group_id", "invite_id": "$response.body#/id"}
# Where a new invite leads (OpenAPI links: generated clients and stateful fuzzing).
_INVITE_LINKS = {
    "getInvite": {"operationId": "getInvite", "parameters": _THIS_INVITE},
    "listInviteRedemptions": {"operationId": "listInviteRedemptions", "parameters": _THIS_INVITE},
    "revokeInvite": {"operationId": "revokeInvite", "parameters": _THIS_INVITE},
    "getInvitePreview": {
        "operationId": "getInvitePreview",
        "parameters": {"code": "$response.body#/code"},
    },
    "joinGroup": {"operationId": "joinGroup", "requestBody": {"code": "$response.body#/code"}},
}


def _with_url(invite: dict) -> dict:
    base = current_app.config["APP_BASE_URL"]
    return {**invite, "invite_url": f"{base}/join/{invite['code']}"}


@blp.route("/groups/<id:group_id>/invites", endpoint="group_invites")
class GroupInvites(MethodView):
    decorators = AUTHENTICATED

    @create_limited
    @idempotent(autocommit=True)
    @blp.arguments(InviteCreateSchema(), required=False)
    @blp.response(201, InviteSchema, headers=LOCATION, description="The new invite.")
    @blp.doc(
        operationId="createInvite",
        parameters=[IDEMPOTENCY_KEY],
        responses={201: {"links": _INVITE_LINKS}},
    )
    @documents_errors(
        blp,
        INVALID_KEYED_BODY,
        UNAUTHORIZED,
        FORBIDDEN,
        (errors.PresetRoleNotAllowed, "An admin asked for an `admin` invite; only the owner may."),
        GROUP_NOT_FOUND,
        (errors.InviteLimitReached, "MAX_ACTIVE_INVITES_PER_GROUP active invites exist."),
        *IDEMPOTENCY_ERRORS,
        *BODY_ERRORS,
        CREATE_LIMITED,
        UNAVAILABLE,
    )
    def post(self, body, group_id):
        """Create an invite (owner or admin)

        Every field is optional; an empty body takes the defaults.
        """
        invite = run(
            invite_service.create_invite,
            current_actor(),
            group_id,
            keys=code_keys(),
            max_active=current_app.config["MAX_ACTIVE_INVITES_PER_GROUP"],
            **body,
        )
        location = f"{request.script_root}{blp.url_prefix}/groups/{group_id}/invites/{invite['id']}"
        # The path url_for("invites.group_invite", ...) builds (tests/test_wire_shapes.py),
        # and the body InviteSchema dumps, both without their machinery.
        return json_response(InviteSchema.wire(_with_url(invite)), 201, {"Location": location})

    @blp.response(200, InviteListSchema, description="The active invites.")
    @blp.doc(operationId="listInvites")
    @documents_errors(blp, INVALID_ID, UNAUTHORIZED, FORBIDDEN, GROUP_NOT_FOUND, UNAVAILABLE)
    def get(self, group_id):
        """List the group's active invites, newest first (owner or admin)"""
        invites = read(invite_service.list_invites, current_actor(), group_id, keys=code_keys())
        return json_response(InviteListSchema.wire(invites))


@blp.route("/groups/<id:group_id>/invites/<id:invite_id>", endpoint="group_invite")
class GroupInviteById(MethodView):
    decorators = AUTHENTICATED

    @blp.response(200, InviteDetailSchema, description="The invite, with its status.")
    @blp.doc(operationId="getInvite")
    @documents_errors(blp, *MANAGING)
    def get(self, group_id, invite_id):
        """One invite with its status, active or not (owner or admin)"""
        invite = read(
            invite_service.get_invite, current_actor(), group_id, invite_id, keys=code_keys()
        )
        return _with_url(invite)

    @blp.response(204, description="Revoked (now or before).")
    @blp.doc(operationId="revokeInvite")
    @documents_errors(blp, *MANAGING)
    def delete(self, group_id, invite_id):
        """Revoke an invite (owner or admin); revoking again is a no-op"""
        run(invite_service.revoke_invite, current_actor(), group_id, invite_id)


@blp.route(
    "/groups/<id:group_id>/invites/<id:invite_id>/redemptions", endpoint="invite_redemptions"
)
class InviteRedemptions(MethodView):
    decorators = AUTHENTICATED

    @blp.response(200, RedemptionListSchema, description="The redemptions, oldest first.")
    @blp.doc(operationId="listInviteRedemptions")
    @documents_errors(blp, *MANAGING)
    def get(self, group_id, invite_id):
        """Who joined with this invite, oldest first (owner or admin)"""
        rows = read(invite_service.list_redemptions, current_actor(), group_id, invite_id)
        return {"data": rows}


@blp.route("/invites/<code:code>", endpoint="invite_preview")
class InvitePreview(MethodView):
    @lookup_limited
    @blp.response(200, InvitePreviewSchema, description="What the invite offers.")
    @blp.doc(operationId="getInvitePreview", security=[])
    @documents_errors(
        blp,
        INVALID_CODE,
        CODE_NOT_FOUND,
        (
            errors.RateLimited,
            "INVITE_LOOKUP_RATE_LIMIT per client address was exceeded, or the failed-lookup "
            "budget of the address or its network is spent.",
        ),
        UNAVAILABLE,
    )
    def get(self, code):
        """Preview an invite code (public, no token)

        Case, dashes and spaces are ignored. Expired and used-up invites answer
        200 with `is_valid: false` and the reason in `status`.
        """
        preview = read(invite_service.preview_invite, code, keys=code_keys())
        return json_response(InvitePreviewSchema.wire(preview))
