"""Marshmallow schemas: they validate requests and document the API."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.api.auth import MAX_DISPLAY_NAME
from app.api.fields import Text, UTCDateTime, between, json_integer, utc_timestamp
from app.codes import CODE_INPUT_PATTERN, CODE_PATTERN, MAX_INPUT_LENGTH
from app.config import MAX_ACTIVE_INVITES_CAP

ROLES = ("owner", "admin", "member", "viewer")
PRESET_ROLES = ("admin", "member", "viewer")
INVITE_STATUSES = ("active", "expired", "exhausted", "revoked")
# An invite's uses (a database constraint too), so also the most redemptions it lists.
MAX_USES = 100

# Documentation only: what the fields below look like, for readers and SDKs.
_TIME = {"example": "2026-11-24T10:30:00Z"}
_CODE = {"pattern": CODE_PATTERN, "example": "ABC-234-XYZ"}
_USES = {"minimum": 0, "maximum": MAX_USES}
# The `name` claim as app/api/auth.py keeps it (and the users table checks).
_DISPLAY_NAME = {"minLength": 1, "maxLength": MAX_DISPLAY_NAME}
GROUP_ID = {"example": "8f14e45f-ceea-467f-a0e6-4b1ab1f2c9a1"}
INVITE_ID = {"example": "1679091c-5a88-4faf-afb5-e6087eb1b2dc"}
USER_ID = {"example": "c9f0f895-fb98-4b91-99f5-1d8f8b5b4b2e"}


class Schema(ma.Schema):
    """Base for request bodies: unknown fields are errors."""

    error_messages = {"type": "Must be a JSON object."}

    class Meta:
        unknown = ma.RAISE


class OutputSchema(ma.Schema):
    """Base for responses. Fields are always present (possibly null) unless
    named in OPTIONAL, and the document says so (``required``); clients must
    tolerate fields added later, so no ``additionalProperties: false``."""

    OPTIONAL: tuple[str, ...] = ()

    class Meta:
        unknown = ma.EXCLUDE

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        field_obj.required = field_name not in self.OPTIONAL


# --- errors -----------------------------------------------------------------


class ErrorDetailSchema(OutputSchema):
    field = fields.String(
        metadata={"description": "The request field, or `body`.", "example": "max_uses"}
    )
    message = fields.String(metadata={"example": "Must be between 1 and 100."})


class ApiErrorSchema(OutputSchema):
    """The envelope of every 4xx and 5xx: the component `ApiError`, since `Error`
    is a built-in type in TypeScript, Swift and Kotlin clients."""

    OPTIONAL = ("details",)

    error = fields.String(
        required=True,
        metadata={
            "description": (
                "A stable snake_case code. Each response lists the codes it can carry; "
                "treat an unknown one like any other error of its status."
            ),
            "pattern": "^[a-z][a-z0-9]*(_[a-z0-9]+)*$",
            "example": "invite_expired",
        },
    )
    message = fields.String(
        required=True,
        metadata={
            "description": "For people; wording may change.",
            "example": "This invite has expired.",
        },
    )
    details = fields.List(
        fields.Nested(ErrorDetailSchema),
        metadata={
            "description": "One entry per problem: on `validation_error`, and on the "
            "`service_unavailable` of `/readyz` (one per failed check)."
        },
    )


# --- groups -----------------------------------------------------------------


class GroupCreateSchema(Schema):
    name = Text(required=True, max_length=100, blank=False, metadata={"example": "Smith Family"})
    description = Text(
        allow_none=True,
        multiline=True,
        max_length=500,
        metadata={"example": "Everyone at Sunday lunch."},
    )
    icon_emoji = Text(allow_none=True, max_length=10, metadata={"example": "🏡"})


class GroupSchema(OutputSchema):
    id = fields.UUID(metadata=GROUP_ID)
    name = fields.String(metadata={"minLength": 1, "maxLength": 100, "example": "Smith Family"})
    description = fields.String(
        allow_none=True, metadata={"maxLength": 500, "example": "Everyone at Sunday lunch."}
    )
    icon_emoji = fields.String(allow_none=True, metadata={"maxLength": 10, "example": "🏡"})
    member_count = fields.Integer(metadata={"minimum": 1, "example": 4})
    your_role = fields.String(metadata={"enum": list(ROLES)})
    created_at = UTCDateTime(metadata=_TIME)


# --- invites ----------------------------------------------------------------


class InviteCreateSchema(Schema):
    preset_role = fields.String(
        load_default="member",
        validate=validate.OneOf(PRESET_ROLES, error="Must be one of: admin, member, viewer."),
    )
    max_uses = json_integer(load_default=1, validate=between(1, MAX_USES))
    expires_in_hours = json_integer(load_default=24, validate=between(1, 168))


class InviteSchema(OutputSchema):
    id = fields.UUID(metadata=INVITE_ID)
    group_id = fields.UUID(metadata=GROUP_ID)
    code = fields.String(metadata=_CODE)
    preset_role = fields.String(metadata={"enum": list(PRESET_ROLES)})
    max_uses = fields.Integer(metadata={"minimum": 1, "maximum": MAX_USES, "example": 5})
    current_uses = fields.Integer(metadata={**_USES, "example": 0})
    expires_at = UTCDateTime(metadata=_TIME)
    created_by = fields.UUID(metadata={**USER_ID, "description": "The creator's user id."})
    created_at = UTCDateTime(metadata=_TIME)
    invite_url = fields.String(
        metadata={"format": "uri", "example": "https://invites.example.com/join/ABC-234-XYZ"}
    )

    @staticmethod
    def wire(invite: dict) -> dict:
        """What ``dump`` makes of a new invite, without marshmallow (the create's
        answer). tests/test_wire_shapes.py holds the two equal."""
        return {
            "id": str(invite["id"]),
            "group_id": str(invite["group_id"]),
            "code": invite["code"],
            "preset_role": invite["preset_role"],
            "max_uses": invite["max_uses"],
            "current_uses": invite["current_uses"],
            "expires_at": utc_timestamp(invite["expires_at"]),
            "created_by": str(invite["created_by"]),
            "created_at": utc_timestamp(invite["created_at"]),
            "invite_url": invite["invite_url"],
        }


class InviteDetailSchema(InviteSchema):
    status = fields.String(
        metadata={
            "enum": list(INVITE_STATUSES),
            "description": "Precedence when several apply: revoked, exhausted, expired.",
        }
    )


class UserRefSchema(OutputSchema):
    id = fields.UUID(metadata=USER_ID)
    display_name = fields.String(allow_none=True, metadata={**_DISPLAY_NAME, "example": "Olivia"})


class InviteSummarySchema(OutputSchema):
    id = fields.UUID(metadata=INVITE_ID)
    code = fields.String(metadata=_CODE)
    preset_role = fields.String(metadata={"enum": list(PRESET_ROLES)})
    max_uses = fields.Integer(metadata={"minimum": 1, "maximum": MAX_USES, "example": 5})
    current_uses = fields.Integer(metadata={**_USES, "example": 2})
    expires_at = UTCDateTime(metadata=_TIME)
    created_at = UTCDateTime(metadata=_TIME)
    created_by = fields.Nested(UserRefSchema)


class InviteListSchema(OutputSchema):
    data = fields.List(
        fields.Nested(InviteSummarySchema),
        metadata={"maxItems": MAX_ACTIVE_INVITES_CAP, "description": "Newest first."},
    )

    @staticmethod
    def wire(invites: list[dict]) -> dict:
        """What ``dump`` makes of the listing, without marshmallow (up to 100 invites
        a request). tests/test_wire_shapes.py holds the two equal."""
        return {
            "data": [
                {
                    "id": str(invite["id"]),
                    "code": invite["code"],
                    "preset_role": invite["preset_role"],
                    "max_uses": invite["max_uses"],
                    "current_uses": invite["current_uses"],
                    "expires_at": utc_timestamp(invite["expires_at"]),
                    "created_at": utc_timestamp(invite["created_at"]),
                    "created_by": {
                        "id": str(invite["created_by"]["id"]),
                        "display_name": invite["created_by"]["display_name"],
                    },
                }
                for invite in invites
            ]
        }


class RedemptionSchema(OutputSchema):
    user_id = fields.UUID(metadata=USER_ID)
    display_name = fields.String(allow_none=True, metadata={**_DISPLAY_NAME, "example": "Max"})
    role = fields.String(metadata={"enum": list(ROLES)})
    joined_at = UTCDateTime(metadata=_TIME)


class RedemptionListSchema(OutputSchema):
    data = fields.List(
        fields.Nested(RedemptionSchema),
        metadata={"maxItems": MAX_USES, "description": "Oldest first."},
    )


class PreviewGroupSchema(OutputSchema):
    name = fields.String(metadata={"minLength": 1, "maxLength": 100, "example": "Smith Family"})
    icon_emoji = fields.String(allow_none=True, metadata={"maxLength": 10, "example": "🏡"})
    member_count = fields.Integer(metadata={"minimum": 1, "example": 4})


class InvitePreviewSchema(OutputSchema):
    group = fields.Nested(PreviewGroupSchema)
    preset_role = fields.String(metadata={"enum": list(PRESET_ROLES)})
    expires_at = UTCDateTime(metadata=_TIME)
    is_valid = fields.Boolean(metadata={"description": "Whether the code can be used now."})
    status = fields.String(
        metadata={
            "enum": [s for s in INVITE_STATUSES if s != "revoked"],
            "description": "Why `is_valid` is false; revoked codes are 404.",
        }
    )

    @staticmethod
    def wire(preview: dict) -> dict:
        """What ``dump`` makes of the service's preview, without marshmallow: the
        preview is the hottest response. tests/test_wire_shapes.py holds the two equal."""
        return {
            "group": {
                "name": preview["group"]["name"],
                "icon_emoji": preview["group"]["icon_emoji"],
                "member_count": preview["group"]["member_count"],
            },
            "preset_role": preview["preset_role"],
            "expires_at": utc_timestamp(preview["expires_at"]),
            "is_valid": preview["is_valid"],
            "status": preview["status"],
        }


# --- join -------------------------------------------------------------------


class JoinSchema(Schema):
    code = fields.String(
        required=True,
        metadata={
            "example": "ABC-234-XYZ",
            "description": (
                "Case, dashes and spaces are ignored. Anything else is 400 `invalid_code`."
            ),
            "maxLength": MAX_INPUT_LENGTH,
            "pattern": CODE_INPUT_PATTERN,
        },
    )


class JoinedGroupSchema(OutputSchema):
    id = fields.UUID(metadata=GROUP_ID)
    name = fields.String(metadata={"minLength": 1, "maxLength": 100, "example": "Smith Family"})
    member_count = fields.Integer(metadata={"minimum": 1, "example": 5})


class MembershipSchema(OutputSchema):
    id = fields.UUID(metadata={"example": "45c48cce-2e2d-4fbd-b4ab-f9d1c84d6e2a"})
    role = fields.String(metadata={"enum": list(ROLES)})
    joined_at = UTCDateTime(metadata=_TIME)


class JoinResultSchema(OutputSchema):
    group = fields.Nested(JoinedGroupSchema)
    membership = fields.Nested(MembershipSchema)

    @staticmethod
    def wire(joined: dict) -> dict:
        """What ``dump`` makes of a join, without marshmallow. tests/test_wire_shapes.py
        holds the two equal."""
        group, membership = joined["group"], joined["membership"]
        return {
            "group": {
                "id": str(group["id"]),
                "name": group["name"],
                "member_count": group["member_count"],
            },
            "membership": {
                "id": str(membership["id"]),
                "role": membership["role"],
                "joined_at": utc_timestamp(membership["joined_at"]),
            },
        }


# --- operations -------------------------------------------------------------


class HealthSchema(OutputSchema):
    status = fields.String(metadata={"enum": ["ok"], "example": "ok"})


class ReadinessChecksSchema(OutputSchema):
    database = fields.String(
        metadata={"enum": ["ok"], "example": "ok", "description": "The database answers."}
    )
    migrations = fields.String(
        metadata={
            "enum": ["ok"],
            "example": "ok",
            "description": "Every migration of this release is applied.",
        }
    )
    rate_limit_store = fields.String(
        metadata={
            "enum": ["ok", "degraded"],
            "example": "ok",
            "description": "`degraded`: the shared store (Redis) does not answer, and limits "
            "are counted per process until it does. The instance stays ready: an outage of "
            "the shared store must not take every replica out of rotation at once.",
        }
    )


class ReadinessSchema(OutputSchema):
    status = fields.String(metadata={"enum": ["ok"], "example": "ok"})
    checks = fields.Nested(ReadinessChecksSchema)
