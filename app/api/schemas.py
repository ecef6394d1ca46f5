"""Marshmallow schemas: they validate requests and document the API."""

from __future__ import annotations

import datetime as dt
import numbers
import unicodedata

import marshmallow as ma
from marshmallow import fields, validate

ROLES = ("owner", "admin", "member", "viewer")
PRESET_ROLES = ("admin", "member", "viewer")


class StrictInteger(fields.Integer):
    """A JSON integer: rejects ``"5"``, ``5.5`` and ``true``."""

    default_error_messages = {"invalid": "Must be an integer."}

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self.make_error("invalid")
        return super()._validated(value)

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)


# Characters that reorder text (bidi overrides, isolates, marks): in a group
# name shown on a public preview they are a spoofing tool, never a need.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e") | frozenset(
    "\u2066\u2067\u2068\u2069"
)


# Zero-width joiner and emoji tag characters: format characters that emoji
# sequences (family, flags of regions) are made of.
_EMOJI_FORMAT = frozenset("\u200d") | frozenset(chr(c) for c in range(0xE0020, 0xE0080))


class Text(fields.String):
    """A string with outer whitespace removed and nothing invisible or deceptive:
    no control characters, no format characters (zero-width spaces, soft
    hyphens, bidi overrides; emoji joiners excepted), no line or paragraph
    separators. ``multiline=True`` allows line breaks and tabs (descriptions).
    """

    default_error_messages = {
        "control": "Must not contain control, invisible or text-direction characters."
    }

    def __init__(self, *, multiline: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.allowed_controls = frozenset("\t\n\r") if multiline else frozenset()

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        for ch in text:
            category = unicodedata.category(ch)
            if category in {"Zl", "Zp"} or ch in _BIDI_CONTROLS:
                raise self.make_error("control")
            if category == "Cc" and ch not in self.allowed_controls:
                raise self.make_error("control")
            if category == "Cf" and ch not in _EMOJI_FORMAT:
                raise self.make_error("control")
        return text


class UTCDateTime(fields.DateTime):
    """RFC 3339 in UTC with an explicit offset."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class Schema(ma.Schema):
    """Base for request bodies: unknown fields are errors."""

    error_messages = {"type": "Must be a JSON object."}

    class Meta:
        unknown = ma.RAISE


class OutputSchema(ma.Schema):
    """Base for responses. Fields are always present (possibly null) unless
    named in OPTIONAL; clients must tolerate fields added later, so no
    ``additionalProperties: false`` (see the end of this module)."""

    OPTIONAL: tuple[str, ...] = ()

    class Meta:
        unknown = ma.EXCLUDE


def between(low: int, high: int) -> validate.Range:
    return validate.Range(min=low, max=high, error="Must be between {min} and {max}.")


def length(low: int | None, high: int) -> validate.Length:
    if low:
        return validate.Length(min=low, max=high, error="Must be {min} to {max} characters.")
    return validate.Length(max=high, error="Must be at most {max} characters.")


# --- errors -----------------------------------------------------------------


class ErrorDetailSchema(OutputSchema):
    field = fields.String(metadata={"description": "The request field, or `body`."})
    message = fields.String()


class ErrorSchema(OutputSchema):
    OPTIONAL = ("details",)

    error = fields.String(
        required=True, metadata={"description": "Stable snake_case code", "example": "not_found"}
    )
    message = fields.String(required=True, metadata={"description": "For humans"})
    details = fields.List(
        fields.Nested(ErrorDetailSchema), metadata={"description": "On validation errors"}
    )


# --- groups -----------------------------------------------------------------


class GroupCreateSchema(Schema):
    name = Text(required=True, validate=length(1, 100), metadata={"example": "Smith Family"})
    description = Text(allow_none=True, multiline=True, validate=length(None, 500))
    icon_emoji = Text(allow_none=True, validate=length(None, 10), metadata={"example": "🏡"})


class GroupSchema(OutputSchema):
    id = fields.UUID()
    name = fields.String()
    description = fields.String(allow_none=True)
    icon_emoji = fields.String(allow_none=True)
    member_count = fields.Integer()
    your_role = fields.String(metadata={"enum": list(ROLES)})
    created_at = UTCDateTime()


# --- invites ----------------------------------------------------------------


class InviteCreateSchema(Schema):
    preset_role = fields.String(
        load_default="member",
        validate=validate.OneOf(PRESET_ROLES, error="Must be one of: admin, member, viewer."),
    )
    max_uses = StrictInteger(load_default=1, validate=between(1, 100))
    expires_in_hours = StrictInteger(load_default=24, validate=between(1, 168))


class InviteSchema(OutputSchema):
    id = fields.UUID()
    group_id = fields.UUID()
    code = fields.String(metadata={"example": "ABC-234-XYZ"})
    preset_role = fields.String(metadata={"enum": list(PRESET_ROLES)})
    max_uses = fields.Integer()
    current_uses = fields.Integer()
    expires_at = UTCDateTime()
    created_by = fields.UUID(metadata={"description": "The creator's user id"})
    created_at = UTCDateTime()
    invite_url = fields.String(metadata={"example": "https://example.com/join/ABC-234-XYZ"})


class InviteDetailSchema(InviteSchema):
    status = fields.String(metadata={"enum": ["active", "expired", "exhausted", "revoked"]})


class UserRefSchema(OutputSchema):
    id = fields.UUID()
    display_name = fields.String(allow_none=True)


class InviteSummarySchema(OutputSchema):
    id = fields.UUID()
    code = fields.String()
    preset_role = fields.String(metadata={"enum": list(PRESET_ROLES)})
    max_uses = fields.Integer()
    current_uses = fields.Integer()
    expires_at = UTCDateTime()
    created_at = UTCDateTime()
    created_by = fields.Nested(UserRefSchema)


class InviteListSchema(OutputSchema):
    data = fields.List(fields.Nested(InviteSummarySchema))


class RedemptionSchema(OutputSchema):
    user_id = fields.UUID()
    display_name = fields.String(allow_none=True)
    role = fields.String(metadata={"enum": list(ROLES)})
    joined_at = UTCDateTime()


class RedemptionListSchema(OutputSchema):
    data = fields.List(fields.Nested(RedemptionSchema))


class PreviewGroupSchema(OutputSchema):
    name = fields.String()
    icon_emoji = fields.String(allow_none=True)
    member_count = fields.Integer()


class InvitePreviewSchema(OutputSchema):
    group = fields.Nested(PreviewGroupSchema)
    preset_role = fields.String(metadata={"enum": list(PRESET_ROLES)})
    expires_at = UTCDateTime()
    is_valid = fields.Boolean()
    status = fields.String(metadata={"enum": ["active", "expired", "exhausted"]})


# --- join -------------------------------------------------------------------


class JoinSchema(Schema):
    code = fields.String(
        required=True,
        metadata={"example": "ABC-234-XYZ", "description": "Case and separators are ignored."},
    )


class JoinedGroupSchema(OutputSchema):
    id = fields.UUID()
    name = fields.String()
    member_count = fields.Integer()


class MembershipSchema(OutputSchema):
    id = fields.UUID()
    role = fields.String(metadata={"enum": list(ROLES)})
    joined_at = UTCDateTime()


class JoinResultSchema(OutputSchema):
    group = fields.Nested(JoinedGroupSchema)
    membership = fields.Nested(MembershipSchema)


# --- operations -------------------------------------------------------------


class HealthSchema(OutputSchema):
    status = fields.String(metadata={"example": "ok"})


def _mark_always_present(schema: type[OutputSchema]) -> None:
    for name, field in schema._declared_fields.items():
        field.required = name not in schema.OPTIONAL
    for subclass in schema.__subclasses__():
        _mark_always_present(subclass)


_mark_always_present(OutputSchema)
