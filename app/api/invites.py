"""Invites: managed by a group's owner and admins, previewed by anyone."""

from __future__ import annotations

from flask import current_app, url_for
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
from app.api.schemas import (
    InviteCreateSchema,
    InviteDetailSchema,
    InviteListSchema,
    InvitePreviewSchema,
    InviteSchema,
    RedemptionListSchema,
)
from app.auth import current_actor
from app.db import get_engine
from app.limiter import limiter, lookup_limit
from app.services import invites as invite_service

blp = Blueprint("invites", __name__, url_prefix="/api/v1", description="Invite codes.")

FORBIDDEN = (403, "`forbidden`: only the owner and admins manage invites.")
GROUP_NOT_FOUND = (404, "`group_not_found` (or not a member), or `invite_not_found`.")


def _with_url(invite: dict) -> dict:
    base = current_app.config["APP_BASE_URL"]
    return {**invite, "invite_url": f"{base}/join/{invite['code']}"}


@blp.route("/groups/<id:group_id>/invites", endpoint="group_invites")
class GroupInvites(MethodView):
    decorators = AUTHENTICATED

    @blp.arguments(InviteCreateSchema, required=False)
    @blp.response(201, InviteSchema, headers={"Location": {"schema": {"type": "string"}}})
    @documents_errors(
        blp,
        INVALID,
        UNAUTHORIZED,
        (403, "`forbidden`, or `preset_role_not_allowed` (only the owner mints admin invites)."),
        (404, "`group_not_found`: no such group, or the caller is not a member."),
        (409, "`invite_limit_reached`: MAX_ACTIVE_INVITES_PER_GROUP active invites exist."),
        *BODY_ERRORS,
        UNAVAILABLE,
    )
    def post(self, body, group_id):
        """Create an invite (owner or admin)

        Every field is optional; an empty body takes the defaults.
        """
        invite = invite_service.create_invite(
            get_engine(),
            current_actor(),
            group_id,
            max_active=current_app.config["MAX_ACTIVE_INVITES_PER_GROUP"],
            **body,
        )
        location = url_for("invites.group_invite", group_id=group_id, invite_id=invite["id"])
        return _with_url(invite), 201, {"Location": location}

    @blp.response(200, InviteListSchema)
    @documents_errors(blp, INVALID, UNAUTHORIZED, FORBIDDEN, GROUP_NOT_FOUND, UNAVAILABLE)
    def get(self, group_id):
        """List the group's active invites, newest first (owner or admin)"""
        invites = invite_service.list_invites(get_engine(), current_actor(), group_id)
        return {"data": invites}


@blp.route("/groups/<id:group_id>/invites/<id:invite_id>", endpoint="group_invite")
class GroupInviteById(MethodView):
    decorators = AUTHENTICATED

    @blp.response(200, InviteDetailSchema)
    @documents_errors(blp, INVALID, UNAUTHORIZED, FORBIDDEN, GROUP_NOT_FOUND, UNAVAILABLE)
    def get(self, group_id, invite_id):
        """One invite with its status, active or not (owner or admin)"""
        invite = invite_service.get_invite(
            get_engine(),
            current_actor(),
            group_id,
            invite_id,
        )
        return _with_url(invite)

    @blp.response(204)
    @documents_errors(blp, INVALID, UNAUTHORIZED, FORBIDDEN, GROUP_NOT_FOUND, UNAVAILABLE)
    def delete(self, group_id, invite_id):
        """Revoke an invite (owner or admin); revoking again is a no-op"""
        invite_service.revoke_invite(
            get_engine(),
            current_actor(),
            group_id,
            invite_id,
        )


@blp.route(
    "/groups/<id:group_id>/invites/<id:invite_id>/redemptions", endpoint="invite_redemptions"
)
class InviteRedemptions(MethodView):
    decorators = AUTHENTICATED

    @blp.response(200, RedemptionListSchema)
    @documents_errors(blp, INVALID, UNAUTHORIZED, FORBIDDEN, GROUP_NOT_FOUND, UNAVAILABLE)
    def get(self, group_id, invite_id):
        """Who joined with this invite, oldest first (owner or admin)"""
        rows = invite_service.list_redemptions(
            get_engine(),
            current_actor(),
            group_id,
            invite_id,
        )
        return {"data": rows}


@blp.route("/invites/<code>", endpoint="invite_preview")
class InvitePreview(MethodView):
    @limiter.limit(lookup_limit)
    @blp.response(200, InvitePreviewSchema)
    @blp.doc(security=[])
    @documents_errors(
        blp,
        (400, "`invalid_code`: this cannot be an invite code."),
        (404, "`invite_not_found`: unknown or revoked code."),
        (429, "`rate_limited` (INVITE_LOOKUP_RATE_LIMIT per client address)."),
        UNAVAILABLE,
    )
    def get(self, code):
        """Preview an invite code (public, no token)

        Case, dashes and spaces are ignored. Expired and used-up invites answer
        200 with `is_valid: false` and the reason in `status`.
        """
        return invite_service.preview_invite(get_engine(), code)
