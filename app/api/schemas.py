"""Marshmallow schemas: they validate requests and document the API."""

from __future__ import annotations

import datetime as dt
import functools
import numbers
import unicodedata

import marshmallow as ma
from marshmallow import fields, validate

from app.codes import CODE_INPUT_PATTERN, CODE_PATTERN, MAX_INPUT_LENGTH

ROLES = ("owner", "admin", "member", "viewer")
PRESET_ROLES = ("admin", "member", "viewer")
INVITE_STATUSES = ("active", "expired", "exhausted", "revoked")

# Documentation only: what the fields below look like, for readers and SDKs.
_TIME = {"example": "2026-11-24T10:30:00Z"}
_CODE = {"pattern": CODE_PATTERN, "example": "ABC-234-XYZ"}
_USES = {"minimum": 0, "maximum": 100}
GROUP_ID = {"example": "8f14e45f-ceea-467f-a0e6-4b1ab1f2c9a1"}
INVITE_ID = {"example": "1679091c-5a88-4faf-afb5-e6087eb1b2dc"}
USER_ID = {"example": "c9f0f895-fb98-4b91-99f5-1d8f8b5b4b2e"}


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
# The zero-width joiner is a format character that emoji sequences need.
_EMOJI_JOINER = "\u200d"
_LINE_BREAKS = frozenset("\t\n\r")


@functools.cache
def _refused(multiline: bool) -> frozenset[str]:
    """Characters refused inside text: control characters (bar line breaks in
    multiline text), format characters such as zero-width spaces, soft hyphens
    and bidi overrides (bar the emoji joiner), line and paragraph separators.

    Only the Basic Multilingual Plane is policed, so the rule is also a regular
    expression that means the same in ECMA-262 and Python (the OpenAPI
    document carries it); the few format characters beyond it are emoji tags
    and rare script controls, none of them invisible spacing or reordering.
    """
    refused = set(_BIDI_CONTROLS)
    for code in range(0x10000):
        ch = chr(code)
        category = unicodedata.category(ch)
        if category == "Cc":
            refuse = not (multiline and ch in _LINE_BREAKS)
        else:
            refuse = category in {"Zl", "Zp"} or (category == "Cf" and ch != _EMOJI_JOINER)
        if refuse:
            refused.add(ch)
    return frozenset(refused)


def _char_class(chars: frozenset[str], *, negate: bool = False) -> str:
    """A regex class of ``chars`` as \\uXXXX ranges (valid in ECMA-262 and Python)."""
    ranges: list[list[int]] = []
    for code in sorted(ord(ch) for ch in chars):
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    body = "".join(
        f"\\u{low:04x}" if low == high else f"\\u{low:04x}-\\u{high:04x}" for low, high in ranges
    )
    return f"[{'^' if negate else ''}{body}]"


# What str.strip() removes: every whitespace character (none lie beyond the BMP).
_WHITESPACE = frozenset(chr(code) for code in range(0x10000) if chr(code).isspace())


def _text_pattern(refused: frozenset[str], *, blank: bool) -> str:
    """Outer whitespace of any kind, around text that starts and ends visibly
    and contains nothing refused: exactly what ``Text`` accepts."""
    outer = _char_class(_WHITESPACE)
    inner = _char_class(refused, negate=True)
    visible = _char_class(refused | _WHITESPACE, negate=True)
    core = f"{visible}(?:{inner}*{visible})?"
    return f"^{outer}*{f'(?:{core})?' if blank else core}{outer}*$"


class Text(fields.String):
    """A string with outer whitespace removed and nothing invisible or deceptive
    inside (see ``_refused``). ``multiline=True`` allows line breaks and tabs
    (descriptions); ``blank=False`` requires a visible character. The length
    counts the characters sent, before trimming, so the document's maxLength
    is exact.
    """

    default_error_messages = {
        "control": "Must not contain control, invisible or text-direction characters.",
        "blank": "Must not be blank.",
        "too_long": "Must be at most {max} characters.",
    }

    def __init__(self, *, max_length: int, multiline: bool = False, blank: bool = True, **kwargs):
        self.refused = _refused(multiline)
        self.max_length = max_length
        self.blank = blank
        metadata = {
            "maxLength": max_length,
            "pattern": _text_pattern(self.refused, blank=blank),
            **kwargs.pop("metadata", {}),
        }
        if not blank:
            metadata["minLength"] = 1
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        raw = super()._deserialize(value, attr, data, **kwargs)
        if len(raw) > self.max_length:
            raise self.make_error("too_long", max=self.max_length)
        text = raw.strip()
        if any(ch in self.refused for ch in text):
            raise self.make_error("control")
        if not text and not self.blank:
            raise self.make_error("blank")
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


# --- errors -----------------------------------------------------------------


class ErrorDetailSchema(OutputSchema):
    field = fields.String(
        metadata={"description": "The request field, or `body`.", "example": "max_uses"}
    )
    message = fields.String(metadata={"example": "Must be between 1 and 100."})


class ErrorSchema(OutputSchema):
    """The envelope of every 4xx and 5xx."""

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
        metadata={"description": "Present on `validation_error` only: one entry per problem."},
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
    max_uses = StrictInteger(load_default=1, validate=between(1, 100))
    expires_in_hours = StrictInteger(load_default=24, validate=between(1, 168))


class InviteSchema(OutputSchema):
    id = fields.UUID(metadata=INVITE_ID)
    group_id = fields.UUID(metadata=GROUP_ID)
    code = fields.String(metadata=_CODE)
    preset_role = fields.String(metadata={"enum": list(PRESET_ROLES)})
    max_uses = fields.Integer(metadata={"minimum": 1, "maximum": 100, "example": 5})
    current_uses = fields.Integer(metadata={**_USES, "example": 0})
    expires_at = UTCDateTime(metadata=_TIME)
    created_by = fields.UUID(metadata={**USER_ID, "description": "The creator's user id."})
    created_at = UTCDateTime(metadata=_TIME)
    invite_url = fields.String(
        metadata={"format": "uri", "example": "https://invites.example.com/join/ABC-234-XYZ"}
    )


class InviteDetailSchema(InviteSchema):
    status = fields.String(
        metadata={
            "enum": list(INVITE_STATUSES),
            "description": "Precedence when several apply: revoked, exhausted, expired.",
        }
    )


class UserRefSchema(OutputSchema):
    id = fields.UUID(metadata=USER_ID)
    display_name = fields.String(allow_none=True, metadata={"example": "Olivia"})


class InviteSummarySchema(OutputSchema):
    id = fields.UUID(metadata=INVITE_ID)
    code = fields.String(metadata=_CODE)
    preset_role = fields.String(metadata={"enum": list(PRESET_ROLES)})
    max_uses = fields.Integer(metadata={"minimum": 1, "maximum": 100, "example": 5})
    current_uses = fields.Integer(metadata={**_USES, "example": 2})
    expires_at = UTCDateTime(metadata=_TIME)
    created_at = UTCDateTime(metadata=_TIME)
    created_by = fields.Nested(UserRefSchema)


class InviteListSchema(OutputSchema):
    data = fields.List(fields.Nested(InviteSummarySchema))


class RedemptionSchema(OutputSchema):
    user_id = fields.UUID(metadata=USER_ID)
    display_name = fields.String(allow_none=True, metadata={"example": "Max"})
    role = fields.String(metadata={"enum": list(ROLES)})
    joined_at = UTCDateTime(metadata=_TIME)


class RedemptionListSchema(OutputSchema):
    data = fields.List(fields.Nested(RedemptionSchema))


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


# --- operations -------------------------------------------------------------


class HealthSchema(OutputSchema):
    status = fields.String(metadata={"enum": ["ok"], "example": "ok"})


def _mark_always_present(schema: type[OutputSchema]) -> None:
    for name, field in schema._declared_fields.items():
        field.required = name not in schema.OPTIONAL
    for subclass in schema.__subclasses__():
        _mark_always_present(subclass)


_mark_always_present(OutputSchema)
