"""Validation without HTTP: request schemas, error details, configuration, log redaction."""

from __future__ import annotations

import logging
import re
import sys

import marshmallow as ma
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import config
from app.api.parsing import error_details, summarise, validation_error
from app.api.schemas import GroupCreateSchema, InviteCreateSchema, JoinSchema, Text
from app.config import ConfigError
from app.errors import ValidationFailed
from app.request_log import RedactingFormatter, redact
from tests.helpers import make_token

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


# --- error details and the summary message ------------------------------------------


def test_error_details_follow_the_contract():
    messages = _errors(InviteCreateSchema(), {"max_uses": 0})
    details = error_details(messages)
    assert details == [{"field": "max_uses", "message": "Must be between 1 and 100."}]
    assert summarise(details) == "max_uses: must be between 1 and 100"


def test_several_errors_are_summarised_in_field_order():
    messages = _errors(
        InviteCreateSchema(), {"preset_role": "owner", "max_uses": "5", "expires_in_hours": 0}
    )
    details = error_details(messages)
    assert details == [
        {"field": "preset_role", "message": "Must be one of: admin, member, viewer."},
        {"field": "max_uses", "message": "Must be an integer."},
        {"field": "expires_in_hours", "message": "Must be between 1 and 168."},
    ]
    assert summarise(details) == (
        "preset_role: must be one of: admin, member, viewer; "
        "max_uses: must be an integer; expires_in_hours: must be between 1 and 168"
    )


def test_schema_level_errors_belong_to_the_body():
    details = error_details(_errors(InviteCreateSchema(), []))
    assert details == [{"field": "body", "message": "Must be a JSON object."}]
    assert summarise(details) == "body: must be a JSON object"


def test_nested_and_listed_messages_are_flattened():
    messages = {
        "group": {"name": ["Too long.", "Bad."], "_schema": ["Broken."]},
        "items": {0: {"code": ["Nope."]}},
        "plain": "Just a string.",
    }
    assert error_details(messages) == [
        {"field": "group.name", "message": "Too long."},
        {"field": "group.name", "message": "Bad."},
        {"field": "group", "message": "Broken."},
        {"field": "items.0.code", "message": "Nope."},
        {"field": "plain", "message": "Just a string."},
    ]


def test_summary_of_no_details_is_the_generic_message():
    assert summarise([]) == ValidationFailed.message
    assert error_details({}) == []
    assert error_details("Oops.") == [{"field": "body", "message": "Oops."}]


def test_validation_error_carries_the_envelope_parts():
    error = validation_error([{"field": "max_uses", "message": "Must be between 1 and 100."}])
    assert isinstance(error, ValidationFailed)
    assert error.status == 400
    assert error.code == "validation_error"
    assert error.message == "max_uses: must be between 1 and 100"
    assert error.details == [{"field": "max_uses", "message": "Must be between 1 and 100."}]


# --- configuration ----------------------------------------------------------------------

SECRET = "s" * 32
VALID_ENV = {"DATABASE_URL": "postgresql://db.example/invites", "JWT_SECRET_KEY": SECRET}
PRODUCTION_ENV = {**VALID_ENV, "APP_ENV": "production", "APP_BASE_URL": "https://app.example"}


def _public_key_pem(algorithm: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_defaults_from_an_empty_environment():
    cfg = config.from_env({})
    assert cfg["APP_ENV"] == "development"
    assert cfg["DATABASE_URL"] is None
    assert cfg["APP_BASE_URL"] is None  # create_app fills in the local default
    assert cfg["MAX_ACTIVE_INVITES_PER_GROUP"] == 100
    assert cfg["TRUSTED_PROXY_COUNT"] == 0
    assert cfg["INVITE_LOOKUP_RATE_LIMIT"] == "30/minute"
    assert cfg["JOIN_RATE_LIMIT"] == "10/minute"
    assert cfg["RATELIMIT_STORAGE_URI"] == "memory://"
    assert cfg["JWT_ALGORITHM"] == "HS256"
    assert cfg["JWT_DECODE_ALGORITHMS"] == ["HS256"]
    assert cfg["JWT_SECRET_KEY"] is None
    assert cfg["JWT_DECODE_AUDIENCE"] is None
    assert cfg["JWT_DECODE_ISSUER"] is None


def test_values_from_the_environment():
    cfg = config.from_env(
        {
            "APP_BASE_URL": "https://invites.example/ ",
            "MAX_ACTIVE_INVITES_PER_GROUP": " 7 ",
            "TRUSTED_PROXY_COUNT": "1",
            "JWT_ALGORITHM": "RS256",
            "JWT_DECODE_AUDIENCE": "invites",
            "INVITE_LOOKUP_RATE_LIMIT": "5/second",
            "RATELIMIT_STORAGE_URI": "redis://cache:6379/0",
        }
    )
    assert cfg["APP_BASE_URL"] == "https://invites.example"
    assert cfg["MAX_ACTIVE_INVITES_PER_GROUP"] == 7
    assert cfg["TRUSTED_PROXY_COUNT"] == 1
    # Only the configured algorithm is accepted when decoding.
    assert cfg["JWT_DECODE_ALGORITHMS"] == ["RS256"]
    assert cfg["JWT_DECODE_AUDIENCE"] == "invites"
    assert cfg["INVITE_LOOKUP_RATE_LIMIT"] == "5/second"
    assert cfg["RATELIMIT_STORAGE_URI"] == "redis://cache:6379/0"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_ACTIVE_INVITES_PER_GROUP", "many"),
        ("MAX_ACTIVE_INVITES_PER_GROUP", "1.5"),
        ("MAX_ACTIVE_INVITES_PER_GROUP", "0"),
        ("MAX_ACTIVE_INVITES_PER_GROUP", "-5"),
        ("TRUSTED_PROXY_COUNT", "-1"),
        ("TRUSTED_PROXY_COUNT", "one"),
        ("DB_POOL_SIZE", "0"),
        ("DB_STATEMENT_TIMEOUT_MS", "5s"),
        ("JWT_DECODE_LEEWAY", "ten"),
        ("MAX_CONTENT_LENGTH", "100"),
    ],
)
def test_bad_integers_are_refused(name, value):
    with pytest.raises(ConfigError, match=name):
        config.from_env({name: value})


@pytest.mark.parametrize("value", ["", "   "])
def test_blank_integers_take_the_default(value):
    assert (
        config.from_env({"MAX_ACTIVE_INVITES_PER_GROUP": value})["MAX_ACTIVE_INVITES_PER_GROUP"]
        == 100
    )


def test_a_complete_configuration_is_accepted():
    config.validate(config.from_env(VALID_ENV))
    config.validate(config.from_env(PRODUCTION_ENV))
    config.validate(config.from_env({**VALID_ENV, "JOIN_RATE_LIMIT": "5 per minute;100/day"}))


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_a_public_key_configuration_is_accepted(algorithm):
    env = {
        "DATABASE_URL": "postgresql://x/y",
        "JWT_ALGORITHM": algorithm,
        "JWT_PUBLIC_KEY": _public_key_pem(algorithm),
    }
    config.validate(config.from_env(env))
    config.validate(
        config.from_env({**env, "APP_ENV": "production", "APP_BASE_URL": "https://a.example"})
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "postgresql://x/y"}, "JWT_SECRET_KEY is required"),
        ({**VALID_ENV, "JWT_SECRET_KEY": ""}, "JWT_SECRET_KEY is required"),
        ({**VALID_ENV, "JWT_ALGORITHM": "RS256"}, "JWT_PUBLIC_KEY"),
        ({**VALID_ENV, "JWT_ALGORITHM": "ES256"}, "JWT_PUBLIC_KEY"),
        ({**VALID_ENV, "JWT_ALGORITHM": "none"}, "must be one of"),
        ({**VALID_ENV, "JWT_ALGORITHM": "HS512"}, "must be one of"),
        ({**VALID_ENV, "JWT_ALGORITHM": "hs256"}, "must be one of"),
        ({**VALID_ENV, "JWT_ALGORITHM": "RS256,HS256"}, "must be one of"),
        ({**PRODUCTION_ENV, "JWT_SECRET_KEY": "s" * 31}, "at least 32 characters"),
        ({**PRODUCTION_ENV, "APP_BASE_URL": ""}, "APP_BASE_URL"),
        ({**VALID_ENV, "JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY": "not a key"}, "JWT_PUBLIC_KEY"),
        ({**VALID_ENV, "JWT_ALGORITHM": "ES256", "JWT_PUBLIC_KEY": SECRET}, "JWT_PUBLIC_KEY"),
        ({**VALID_ENV, "INVITE_LOOKUP_RATE_LIMIT": "lots"}, "INVITE_LOOKUP_RATE_LIMIT"),
        ({**VALID_ENV, "JOIN_RATE_LIMIT": "10/fortnight"}, "JOIN_RATE_LIMIT"),
        ({"JWT_SECRET_KEY": SECRET}, "DATABASE_URL"),
        ({**VALID_ENV, "DATABASE_URL": "  "}, "DATABASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "invites.example"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "ftp://invites.example"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invites.example?x=1"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invites.example#top"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invites.example:port"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://in vites.example"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invites.example/p?"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invites.example#"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://user:pw@invites.example"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invites.example/\x00"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invités.example"}, "APP_BASE_URL"),
        ({**PRODUCTION_ENV, "APP_BASE_URL": "/join"}, "APP_BASE_URL"),
    ],
)
def test_insecure_or_broken_configurations_are_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        config.validate(config.from_env(env))


@pytest.mark.parametrize(
    "url",
    [
        "https://invites.example",
        "http://127.0.0.1:8000",
        "https://example.com/groups",
        "http://[::1]:8000",
    ],
)
def test_base_urls_that_make_an_invite_url_are_accepted(url):
    config.validate(config.from_env({**VALID_ENV, "APP_BASE_URL": url}))


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("::", "http://[::]:8000"),
        ("::1", "http://[::1]:8000"),
        ("[::1]", "http://[::1]:8000"),
    ],
)
def test_the_local_base_url_is_a_url_for_any_host(host, expected):
    url = config.local_base_url(host, "8000")
    assert url == expected
    assert config.is_base_url(url)


def test_a_short_secret_is_allowed_outside_production():
    config.validate(config.from_env({**VALID_ENV, "JWT_SECRET_KEY": "dev"}))


# --- log redaction -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ABC-234-XYZ", "ABC-***-***"),
        ("abc-234-xyz", "abc-***-***"),
        ("code=ABC-123-XYZ.", "code=ABC-***-***."),
        ("GET /api/v1/invites/HJK-MNP-789 404", "GET /api/v1/invites/HJK-***-*** 404"),
        ("two: ABC-234-XYZ and KLM-NPQ-RST", "two: ABC-***-*** and KLM-***-***"),
        ("{'code': 'ABC-234-XYZ'}", "{'code': 'ABC-***-***'}"),
        ("nothing secret here", "nothing secret here"),
        ("uuid 0b4c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d", "uuid 0b4c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d"),
    ],
)
def test_redact_masks_codes(text, expected):
    assert redact(text) == expected


def test_redact_masks_tokens():
    token = make_token(name="Alice")
    assert token.startswith("eyJ")
    assert redact(f"Authorization: Bearer {token}") == "Authorization: Bearer [token]"
    assert redact(f"a {token} b {token}") == "a [token] b [token]"
    assert token not in redact(f"header={token!r}")


def test_the_formatter_redacts_the_message_and_the_traceback():
    formatter = RedactingFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError("bad code ABC-234-XYZ")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "app", logging.ERROR, __file__, 1, "join %s failed", ("HJK-MNP-789",), exc_info
    )
    line = formatter.format(record)
    assert "HJK-***-***" in line
    assert "ABC-***-***" in line
    assert "MNP-789" not in line
    assert "234-XYZ" not in line


def test_a_private_key_is_not_accepted_as_the_public_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from app.config import ConfigError, from_env, validate

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    config = from_env(
        {"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY": private_pem, "DATABASE_URL": "postgresql://x"}
    )
    with pytest.raises(ConfigError, match="must be a public key"):
        validate(config)


# --- the documented pattern is the rule --------------------------------------------------

_TEXT_FIELDS = {
    name: field
    for name, field in GroupCreateSchema._declared_fields.items()
    if isinstance(field, Text)
}
# Text drawn from the characters that matter: every kind of whitespace and
# refused character, ordinary letters, emoji and their joiner, astral format
# characters (which are allowed), and anything else at all.
_INTERESTING = st.sampled_from(
    list(" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000")
    + list("\x00\x07\x1b\x7f\x9b\xad\u061c\u200b\u200d\u200e\u202e\u2066\ufeff")
    + list("aZé家ש")
    + ["🏡", "\U000e0067", "\U000110bd"]
)
_TEXT = st.lists(st.one_of(_INTERESTING, st.characters()), max_size=14).map("".join)


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from(sorted(_TEXT_FIELDS)), text=_TEXT)
def test_text_is_accepted_exactly_when_it_matches_the_documented_pattern(field, text):
    declared = _TEXT_FIELDS[field]
    pattern = declared.metadata["pattern"]
    # Short limits for the icon; the others are checked by length separately.
    documented = re.fullmatch(pattern, text) is not None and len(text) <= declared.max_length
    errors = GroupCreateSchema().validate({"name": "Family", field: text})
    assert (not errors) is documented, (text, errors)


@pytest.mark.parametrize("field", sorted(_TEXT_FIELDS))
def test_text_patterns_mean_the_same_to_ecma_engines(field):
    # Only \uXXXX escapes (no \p{..}, no astral escapes, no flags): ECMA-262
    # without the u flag reads the class the way Python does.
    pattern = _TEXT_FIELDS[field].metadata["pattern"]
    assert pattern.isascii()
    assert re.sub(r"\\u[0-9a-f]{4}|[\[\]^()?:*$-]", "", pattern) == "", pattern
