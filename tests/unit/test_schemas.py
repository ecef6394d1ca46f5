"""Request schemas without HTTP: what each body accepts, and that the documented
text patterns are exactly the rule."""

from __future__ import annotations

import re

import marshmallow as ma
import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from app.api.fields import Text
from app.api.schemas import GroupCreateSchema, InviteCreateSchema, JoinSchema

CONTROL = Text.default_error_messages["control"]


def _errors(schema: ma.Schema, data: object) -> dict:
    with pytest.raises(ma.ValidationError) as excinfo:
        schema.load(data)
    return excinfo.value.messages


# --- InviteCreateSchema -------------------------------------------------------------


def test_an_empty_invite_body_takes_every_default():
    assert InviteCreateSchema().load({}) == {
        "preset_role": "member",
        "max_uses": 1,
        "expires_in_hours": 24,
    }


@pytest.mark.parametrize(
    "body",
    [
        {"preset_role": "admin", "max_uses": 100, "expires_in_hours": 168},
        {"preset_role": "viewer", "max_uses": 1, "expires_in_hours": 1},
        {"preset_role": "member"},
        {"max_uses": 50},
        {"expires_in_hours": 72},
    ],
)
def test_valid_invite_bodies(body):
    loaded = InviteCreateSchema().load(body)
    assert loaded.items() >= body.items()
    assert set(loaded) == {"preset_role", "max_uses", "expires_in_hours"}


@pytest.mark.parametrize("value", ["5", 5.5, 5.0, True, False, None, [5], {"n": 5}])
@pytest.mark.parametrize("field", ["max_uses", "expires_in_hours"])
def test_integers_must_be_json_integers(field, value):
    messages = _errors(InviteCreateSchema(), {field: value})
    assert set(messages) == {field}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"max_uses": 0}, "Must be between 1 and 100."),
        ({"max_uses": -1}, "Must be between 1 and 100."),
        ({"max_uses": 101}, "Must be between 1 and 100."),
        ({"max_uses": 10**30}, "Must be between 1 and 100."),
        ({"expires_in_hours": 0}, "Must be between 1 and 168."),
        ({"expires_in_hours": 169}, "Must be between 1 and 168."),
    ],
)
def test_integer_ranges(body, message):
    (field,) = body
    assert _errors(InviteCreateSchema(), body) == {field: [message]}


def test_integer_type_errors_say_so():
    assert _errors(InviteCreateSchema(), {"max_uses": "5"}) == {"max_uses": ["Must be an integer."]}
    assert _errors(InviteCreateSchema(), {"max_uses": True}) == {
        "max_uses": ["Must be an integer."]
    }


@pytest.mark.parametrize("role", ["owner", "OWNER", "Owner", "Member", "ADMIN", "", "guest"])
def test_preset_role_must_be_a_grantable_role(role):
    assert _errors(InviteCreateSchema(), {"preset_role": role}) == {
        "preset_role": ["Must be one of: admin, member, viewer."]
    }


@pytest.mark.parametrize("role", [None, 1, ["member"], {"role": "member"}])
def test_preset_role_must_be_a_string(role):
    assert set(_errors(InviteCreateSchema(), {"preset_role": role})) == {"preset_role"}


@pytest.mark.parametrize(
    "body", [{"foo": 1}, {"max_uses": 1, "group_id": "x"}, {"Max_Uses": 1}, {"code": "ABC"}]
)
def test_unknown_invite_fields_are_rejected(body):
    messages = _errors(InviteCreateSchema(), body)
    unknown = set(body) - {"max_uses"}
    assert messages == {name: ["Unknown field."] for name in unknown}


@pytest.mark.parametrize("body", [[], [{}], "x", 5, None, True])
def test_an_invite_body_must_be_an_object(body):
    assert _errors(InviteCreateSchema(), body) == {"_schema": ["Must be a JSON object."]}


# --- GroupCreateSchema ----------------------------------------------------------------


def test_group_names_are_trimmed():
    loaded = GroupCreateSchema().load(
        {"name": "  Smith Family \n", "description": " Us ", "icon_emoji": " 🏡 "}
    )
    assert loaded == {"name": "Smith Family", "description": "Us", "icon_emoji": "🏡"}


@pytest.mark.parametrize("name", ["", " ", "   ", "\t\n", "\r\n  "])
def test_blank_group_names_are_rejected(name):
    assert _errors(GroupCreateSchema(), {"name": name}) == {"name": ["Must not be blank."]}


def test_group_name_length_counts_the_characters_sent():
    # Before trimming, so the OpenAPI document's maxLength is exactly the rule.
    assert GroupCreateSchema().load({"name": "x" * 100})["name"] == "x" * 100
    assert GroupCreateSchema().load({"name": " " + "é" * 98 + " "})["name"] == "é" * 98
    assert GroupCreateSchema().load({"name": "🏡" * 100})["name"] == "🏡" * 100
    for name in ("x" * 101, " " + "x" * 100, "x" * 99 + "  "):
        assert _errors(GroupCreateSchema(), {"name": name}) == {
            "name": ["Must be at most 100 characters."]
        }


@pytest.mark.parametrize(
    "name",
    [
        "a\x00b",
        "\x00",
        "Smith\x07",
        "\x1b[31mred",
        "a\x7fb",
        "a\x08b",
        "a\x1fb",
        "a\x85b",  # C1 control (NEL)
        "a\x9bb",  # C1 CSI
        "Smith\tFamily",  # a name is one line
        "Smith\nFamily",
        "Smith\r\nFamily",
        "evil\u202egpj.exe",  # right-to-left override
        "a\u2066b\u2069",  # isolates
        "a\u200fb",  # right-to-left mark
    ],
)
def test_control_and_direction_characters_are_rejected_in_names(name):
    assert _errors(GroupCreateSchema(), {"name": name}) == {"name": [CONTROL]}


@pytest.mark.parametrize("field", ["description", "icon_emoji"])
@pytest.mark.parametrize("text", ["a\x00", "a\x1b[0m", "a\u202eb", "a\x85b"])
def test_control_characters_are_rejected_in_every_text_field(field, text):
    assert _errors(GroupCreateSchema(), {"name": "Family", field: text}) == {field: [CONTROL]}


def test_descriptions_may_span_lines_but_icons_may_not():
    text = "First line\n\tindented\r\nlast"
    assert GroupCreateSchema().load({"name": "F", "description": text})["description"] == text
    assert _errors(GroupCreateSchema(), {"name": "F", "icon_emoji": "a\nb"}) == {
        "icon_emoji": [CONTROL]
    }


@pytest.mark.parametrize(
    "name",
    ["Smith Family", "Família Gonçalves", "שלום", "عائلة", "家族", "🏡 Home", "O'Brien & Co."],
)
def test_ordinary_names_in_any_script_are_accepted(name):
    assert GroupCreateSchema().load({"name": name}) == {"name": name}


def test_a_joined_emoji_is_not_a_control_character():
    family = "👨\u200d👩\u200d👧"  # zero-width joiners are format characters, not controls
    assert GroupCreateSchema().load({"name": family}) == {"name": family}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"name": ["Missing data for required field."]}),
        ({"name": None}, {"name": ["Field may not be null."]}),
        ({"name": 123}, {"name": ["Not a valid string."]}),
        ({"name": ["Family"]}, {"name": ["Not a valid string."]}),
        ({"name": "Family", "owner": "me"}, {"owner": ["Unknown field."]}),
    ],
)
def test_group_body_shape(body, errors):
    assert _errors(GroupCreateSchema(), body) == errors


def test_description_and_icon_limits():
    ok = GroupCreateSchema().load(
        {"name": "Family", "description": "d" * 500, "icon_emoji": "e" * 10}
    )
    assert len(ok["description"]) == 500
    assert len(ok["icon_emoji"]) == 10
    assert _errors(GroupCreateSchema(), {"name": "Family", "description": "d" * 501}) == {
        "description": ["Must be at most 500 characters."]
    }
    assert _errors(GroupCreateSchema(), {"name": "Family", "icon_emoji": "e" * 11}) == {
        "icon_emoji": ["Must be at most 10 characters."]
    }


def test_optional_group_fields_may_be_null_or_absent():
    assert GroupCreateSchema().load({"name": "Family"}) == {"name": "Family"}
    assert GroupCreateSchema().load(
        {"name": "Family", "description": None, "icon_emoji": None}
    ) == {"name": "Family", "description": None, "icon_emoji": None}


def test_a_family_emoji_fits_the_icon_limit():
    family = "👨\u200d👩\u200d👧\u200d👦"  # seven code points
    assert GroupCreateSchema().load({"name": "F", "icon_emoji": family})["icon_emoji"] == family


def test_join_code_must_be_a_string():
    assert _errors(JoinSchema(), {"code": 5}) == {"code": ["Not a valid string."]}
    assert _errors(JoinSchema(), {}) == {"code": ["Missing data for required field."]}
    assert JoinSchema().load({"code": " abc 234 xyz "}) == {"code": " abc 234 xyz "}


# --- the documented pattern is the rule --------------------------------------------------

_TEXT_FIELDS = {
    name: field
    for name, field in GroupCreateSchema._declared_fields.items()
    if isinstance(field, Text)
}
# Text drawn from the characters that matter: every kind of whitespace and
# refused character, ordinary letters, emoji and their joiner, combining marks
# (to reach the stacking limit), invisible and format characters beyond the
# Basic Multilingual Plane, and anything else at all.
_INTERESTING = st.sampled_from(
    list(" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000")
    + list("\x00\x07\x1b\x7f\x9b\xad\u061c\u200b\u200d\u200e\u202e\u2066\ufeff")
    + list("aZé家ש\u0301\u0302\u05b8\u3164\u2800\u115f\ufe0f")
    + ["\u0301" * 5, "\u0301" * 4]
    + ["\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"]
    + ["🏡", "\U000e0067", "\U000110bd", "\U0001d173", "\U00020000"]
)
_TEXT = st.lists(st.one_of(_INTERESTING, st.characters()), max_size=14).map("".join)


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from(sorted(_TEXT_FIELDS)), text=_TEXT)
def test_text_is_accepted_exactly_when_it_matches_the_documented_pattern(field, text):
    declared = _TEXT_FIELDS[field]
    pattern = declared.metadata["pattern"]
    # The pattern is the rule in the Basic Multilingual Plane; the description
    # states the rest, checked here with Unicode's properties on their own.
    assert "at most 4 combining marks in a row" in declared.metadata["description"]
    assert "Beyond the Basic Multilingual Plane" in declared.metadata["description"]
    trimmed = text.strip()
    flags = regex.sub(r"\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f", "\U0001f3f4", trimmed)
    astral = "".join(ch for ch in flags if ord(ch) > 0xFFFF)
    documented = (
        re.fullmatch(pattern, text) is not None
        and len(text) <= declared.max_length
        and not regex.search(r"[\p{Mn}\p{Me}]{5}", trimmed)
        and not regex.search(_REFUSED_BEYOND_BMP, astral)
        and (not trimmed or regex.search(_VISIBLE, trimmed) is not None)
    )
    errors = GroupCreateSchema().validate({"name": "Family", field: text})
    assert (not errors) is documented, (text, errors)


# The stated rules, from Unicode's properties (the service keeps emoji parts).
_REFUSED_BEYOND_BMP = r"[\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cf}\p{Zl}\p{Zp}]"
_VISIBLE = (
    r"[^\p{Default_Ignorable_Code_Point}\p{Bidi_Control}\p{Cc}\p{Cf}\p{Zl}\p{Zp}"
    r"\p{Mn}\p{Mc}\p{Me}\s\u2800\u200d\ufe00-\ufe0f]"
)


@pytest.mark.parametrize("field", sorted(_TEXT_FIELDS))
def test_text_patterns_mean_the_same_to_ecma_engines(field):
    # Only \uXXXX escapes (no \p{..}, no astral escapes, no flags): ECMA-262
    # reads the classes the way Python does, with or without the u flag.
    pattern = _TEXT_FIELDS[field].metadata["pattern"]
    assert pattern.isascii()
    assert re.sub(r"\\u[0-9a-f]{4}|[\[\]^()?:*$-]", "", pattern) == "", pattern


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("\u3164", "Must not contain control, invisible or text-direction characters."),
        ("\u3164\u3164\u3164", "Must not contain control, invisible or text-direction characters."),
        ("\u2800", "Must not contain control, invisible or text-direction characters."),
        ("\u115f\u1160", "Must not contain control, invisible or text-direction characters."),
        ("A\u3164B", "Must not contain control, invisible or text-direction characters."),
        ("Sm\U000e0041ith", "Must not contain control, invisible or text-direction characters."),
        (
            "\U000e0001\U000e0041",
            "Must not contain control, invisible or text-direction characters.",
        ),
        ("A\U0001d173B", "Must not contain control, invisible or text-direction characters."),
        ("A\u034fB", "Must not contain control, invisible or text-direction characters."),
        ("\u200d", "Must contain a visible character."),
        ("\u200d\ufe0f", "Must contain a visible character."),
        ("\u0301\u0301", "Must contain a visible character."),
        ("Z\u0301\u0302\u0303\u0304\u0305algo", "Must not stack more than 4 combining marks."),
        ("e" + "\u0301" * 30, "Must not stack more than 4 combining marks."),
    ],
)
def test_names_people_cannot_see_are_refused_in_every_plane(name, error):
    assert _errors(GroupCreateSchema(), {"name": name}) == {"name": [error]}


@pytest.mark.parametrize(
    "name",
    [
        "Smith Family",
        "Ng\u01b0\u1eddi Vi\u1ec7t",  # Vietnamese, precomposed
        "Nguye\u0302\u0303n",  # two combining marks on one letter
        "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd",  # pointed Hebrew
        "\u0915\u094d\u0937",  # Devanagari conjunct
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family emoji
        "\u2764\ufe0f team",  # emoji presentation selector
        "\U00020000 Plane 2",  # a CJK Extension B ideograph
        "\U0001d400ath",  # mathematical bold capital A
    ],
)
def test_visible_names_in_any_plane_are_accepted(name):
    assert GroupCreateSchema().load({"name": name})["name"] == name
