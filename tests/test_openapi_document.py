"""The OpenAPI document: valid, checked in, and true to the contract.

SDKs are generated from this document, so it is held to the contract here:
every operation, status, error code, header, security requirement and field
constraint. The behaviour behind it is checked by the fuzzers and by the
generated client (tests/test_sdk.py).
"""

from __future__ import annotations

import inspect
import json
import re
import uuid
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from app import errors
from app.api import document as document_module
from app.api.auth import MAX_DISPLAY_NAME
from app.codes import (
    CODE_INPUT_PATTERN,
    CODE_PATTERN,
    MAX_INPUT_LENGTH,
    could_be_issued,
    generate_code,
    normalise_code,
)
from app.config import from_env

CHECKED_IN = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"

BEARER = [{"bearerAuth": []}]
PUBLIC: list = []

# operationId: (method, path, the statuses the contract names, security).
# Besides these, an operation with a body may answer 413/415, one that reads
# the database 503, and any 500; the document must say so.
CONTRACT = {
    "createGroup": ("post", "/api/v1/groups", {201, 400, 401, 409, 422, 429}, BEARER),
    "getGroup": ("get", "/api/v1/groups/{group_id}", {200, 400, 401, 404}, BEARER),
    "joinGroup": (
        "post",
        "/api/v1/groups/join",
        {200, 400, 401, 404, 409, 410, 422, 429},
        BEARER,
    ),
    "listInvites": (
        "get",
        "/api/v1/groups/{group_id}/invites",
        {200, 400, 401, 403, 404},
        BEARER,
    ),
    "createInvite": (
        "post",
        "/api/v1/groups/{group_id}/invites",
        {201, 400, 401, 403, 404, 409, 422, 429},
        BEARER,
    ),
    "getInvite": (
        "get",
        "/api/v1/groups/{group_id}/invites/{invite_id}",
        {200, 400, 401, 403, 404},
        BEARER,
    ),
    "revokeInvite": (
        "delete",
        "/api/v1/groups/{group_id}/invites/{invite_id}",
        {204, 400, 401, 403, 404},
        BEARER,
    ),
    "listInviteRedemptions": (
        "get",
        "/api/v1/groups/{group_id}/invites/{invite_id}/redemptions",
        {200, 400, 401, 403, 404},
        BEARER,
    ),
    "getInvitePreview": ("get", "/api/v1/invites/{code}", {200, 400, 404, 429}, PUBLIC),
    "getHealth": ("get", "/healthz", {200}, PUBLIC),
    "getReadiness": ("get", "/readyz", {200, 503}, PUBLIC),
}
WITH_BODY = {"createGroup", "joinGroup", "createInvite"}
# The contract's "Retries": these take an Idempotency-Key.
KEYED = WITH_BODY
WITHOUT_DATABASE = {"getHealth"}
TAGS = {
    "groups": {"createGroup", "getGroup", "joinGroup"},
    "invites": {
        "createInvite",
        "listInvites",
        "getInvite",
        "revokeInvite",
        "listInviteRedemptions",
        "getInvitePreview",
    },
    "ops": {"getHealth", "getReadiness"},
}
# The error codes each (operation, status) can carry, from the contract.
ERROR_CODES = {
    ("joinGroup", 400): {"invalid_code", "validation_error"},
    ("joinGroup", 404): {"invite_not_found"},
    ("joinGroup", 409): {"already_member", "idempotency_key_in_use"},
    ("joinGroup", 422): {"idempotency_key_reused"},
    ("createGroup", 409): {"idempotency_key_in_use"},
    ("createGroup", 422): {"idempotency_key_reused"},
    ("createGroup", 429): {"rate_limited"},
    ("createInvite", 429): {"rate_limited"},
    ("createInvite", 422): {"idempotency_key_reused"},
    ("joinGroup", 410): {"invite_expired", "invite_exhausted"},
    ("joinGroup", 429): {"rate_limited"},
    ("createInvite", 403): {"forbidden", "preset_role_not_allowed"},
    ("createInvite", 404): {"group_not_found"},
    ("createInvite", 409): {"invite_limit_reached", "idempotency_key_in_use"},
    ("getGroup", 404): {"group_not_found"},
    ("listInvites", 403): {"forbidden"},
    ("getInvite", 404): {"group_not_found", "invite_not_found"},
    ("revokeInvite", 404): {"group_not_found", "invite_not_found"},
    ("listInviteRedemptions", 404): {"group_not_found", "invite_not_found"},
    ("getInvitePreview", 400): {"invalid_code"},
    ("getInvitePreview", 404): {"invite_not_found"},
    ("getInvitePreview", 429): {"rate_limited"},
    ("getReadiness", 503): {"service_unavailable"},
}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def document(app) -> dict:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def operations(document: dict) -> dict[str, tuple[str, str, dict]]:
    found = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                found[operation["operationId"]] = (method, path, operation)
    return found


def resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        node = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def expected_statuses(operation_id: str) -> set[int]:
    _method, _path, statuses, _security = CONTRACT[operation_id]
    statuses = statuses | {500}
    if operation_id in WITH_BODY:
        statuses |= {413, 415}
    if operation_id not in WITHOUT_DATABASE:
        statuses |= {503}
    return statuses


# --- a valid document, and the one in the repository ---------------------------------


def test_the_document_is_valid_openapi_3(document):
    assert document["openapi"] == "3.0.3"
    validate(document)  # raises on any violation of the OpenAPI 3.0 schema


def test_the_checked_in_document_is_the_served_one(document):
    assert CHECKED_IN.exists(), "docs/openapi.json is missing: run `make openapi`"
    checked_in = json.loads(CHECKED_IN.read_text(encoding="utf-8"))
    assert checked_in == document, (
        "docs/openapi.json differs from the served document: run `make openapi` and commit it"
    )
    # Byte for byte as the writer renders it, so the diff in review is the change itself.
    assert CHECKED_IN.read_text(encoding="utf-8") == document_module.render(checked_in)


def test_the_checker_fails_on_a_stale_copy(tmp_path, capsys):
    stale = tmp_path / "openapi.json"
    stale.write_text('{"openapi": "3.0.3"}\n', encoding="utf-8")
    assert document_module.main(["--check", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert document_module.main([str(stale)]) == 0
    assert document_module.main(["--check", str(stale)]) == 0
    assert json.loads(stale.read_text(encoding="utf-8")) == json.loads(
        CHECKED_IN.read_text(encoding="utf-8")
    )


def test_the_document_does_not_depend_on_the_environment_but_for_its_server(make_app, document):
    other = make_app(
        APP_BASE_URL="https://elsewhere.example",
        INVITE_LOOKUP_RATE_LIMIT="1/second",
        JOIN_RATE_LIMIT="2/hour",
        MAX_ACTIVE_INVITES_PER_GROUP=3,
    )
    served = other.test_client().get("/openapi.json").get_json()
    assert served.pop("servers") == [{"url": "https://elsewhere.example"}]
    assert served == {key: value for key, value in document.items() if key != "servers"}


def test_the_server_is_the_configured_base_url(document):
    # The checked-in copy is built with app.api.document's placeholder URL.
    assert document["servers"] == [{"url": "https://invites.example"}]


# --- operations ---------------------------------------------------------------------


def test_every_contract_operation_and_nothing_else_with_stable_ids(document):
    found = operations(document)
    assert set(found) == set(CONTRACT)
    for operation_id, (method, path, _operation) in found.items():
        assert (method, path) == CONTRACT[operation_id][:2], operation_id


def test_operations_are_tagged_by_resource(document):
    found = operations(document)
    assert {tag["name"] for tag in document["tags"]} == set(TAGS)
    for tag in document["tags"]:
        assert tag["description"], tag
    for tag, ids in TAGS.items():
        for operation_id in ids:
            assert found[operation_id][2]["tags"] == [tag], operation_id


def test_every_operation_has_a_summary(document):
    for operation_id, (_method, _path, operation) in operations(document).items():
        assert operation["summary"].strip(), operation_id


@pytest.mark.parametrize("operation_id", sorted(CONTRACT))
def test_each_operation_documents_every_status_it_can_answer(document, operation_id):
    responses = operations(document)[operation_id][2]["responses"]
    assert "default" not in responses, "a catch-all response would hide omissions"
    assert {int(status) for status in responses} == expected_statuses(operation_id)
    for status, response in responses.items():
        assert response["description"].strip(), status
        if status == "204":
            assert "content" not in response
            continue
        assert set(response["content"]) == {"application/json"}, status
        schema = response["content"]["application/json"]["schema"]
        if int(status) >= 400:
            assert schema == {"$ref": "#/components/schemas/ApiError"}, status


@pytest.mark.parametrize("operation_id", sorted(CONTRACT))
def test_each_error_response_lists_its_codes(document, operation_id):
    responses = operations(document)[operation_id][2]["responses"]
    for status, response in responses.items():
        if int(status) < 400:
            assert "x-error-codes" not in response
            continue
        codes = response["x-error-codes"]
        assert codes, status
        examples = response["content"]["application/json"]["examples"]
        assert set(examples) == set(codes), status
        for code in codes:
            assert f"`{code}`" in response["description"], (status, code)
            example = resolve(document, examples[code])
            assert example["value"]["error"] == code
            assert example["value"]["message"]
            assert example["summary"], (status, code)
        expected = ERROR_CODES.get((operation_id, int(status)))
        if expected is not None:
            assert set(codes) == expected, (operation_id, status)


def test_every_documented_code_is_one_the_service_raises_with_that_status(document):
    raised = {
        cls.code: cls.status
        for cls in vars(errors).values()
        if inspect.isclass(cls) and issubclass(cls, errors.ApiError)
    }
    for operation_id, (_method, _path, operation) in operations(document).items():
        for status, response in operation["responses"].items():
            for code in response.get("x-error-codes", []):
                assert raised.get(code) == int(status), (operation_id, status, code)


def test_common_statuses_carry_their_usual_codes(document):
    usual = {
        401: {"unauthorized"},
        413: {"payload_too_large"},
        415: {"unsupported_media_type"},
        500: {"internal_error"},
        503: {"service_unavailable"},
    }
    for operation_id, (_method, _path, operation) in operations(document).items():
        for status, codes in usual.items():
            if str(status) in operation["responses"]:
                assert set(operation["responses"][str(status)]["x-error-codes"]) == codes, (
                    operation_id,
                    status,
                )
        if (
            operation_id not in {"joinGroup", "getInvitePreview"}
            and "400" in (operation["responses"])
        ):
            assert operation["responses"]["400"]["x-error-codes"] == ["validation_error"]


@pytest.mark.parametrize("operation_id", sorted(CONTRACT))
def test_each_operation_declares_the_headers_it_sends(document, operation_id):
    responses = operations(document)[operation_id][2]["responses"]
    promised = {
        201: {"Location"},
        401: {"WWW-Authenticate"},
        429: {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"},
        503: {"Retry-After"},
    }
    if operation_id in KEYED:
        promised[409] = {"Retry-After"}  # with idempotency_key_in_use
    replayable = {200, 201, 404, 409, 410} if operation_id in KEYED else set()
    for status, response in responses.items():
        headers = dict(response.get("headers", {}))
        # Every response, whatever its status, names the request in the logs.
        assert headers.pop("X-Request-ID") == {"$ref": "#/components/headers/X-Request-ID"}
        replayed = headers.pop("Idempotent-Replayed", None)
        if int(status) in replayable:
            assert replayed == {"$ref": "#/components/headers/Idempotent-Replayed"}, status
        else:
            assert replayed is None, (operation_id, status)
        assert set(headers) == promised.get(int(status), set()), (operation_id, status)
        for name, header in headers.items():
            assert header["schema"]["type"] in {"string", "integer"}, name
            assert header["description"], name
        for name in promised.get(int(status), set()) & {"Location", "WWW-Authenticate"}:
            assert headers[name]["required"] is True
        if "Retry-After" in headers:
            # On a 409 only idempotency_key_in_use carries it.
            assert headers["Retry-After"]["required"] is (int(status) != 409)
            assert headers["Retry-After"]["schema"]["type"] == "integer"


def test_the_request_id_header_is_what_the_service_sends(document, make_app):
    client = make_app(TRUSTED_PROXY_COUNT=1).test_client()  # behind its gateway
    header = document["components"]["headers"]["X-Request-ID"]
    assert header["required"] is True
    pattern = re.compile(header["schema"]["pattern"])
    kept = client.get("/healthz", headers={"X-Request-ID": "gateway:42.a_b-c"})
    assert kept.headers["X-Request-ID"] == "gateway:42.a_b-c"
    for refused in ("has space", "x" * 129, "é"):
        assert not pattern.match(refused)
        fresh = client.get("/healthz", headers={"X-Request-ID": refused}).headers["X-Request-ID"]
        assert fresh != refused
        assert pattern.match(fresh)
    assert pattern.match(client.get("/api/v1/groups").headers["X-Request-ID"])  # a 405 too


def test_response_examples_are_referenced_components(document):
    # openapi-generator warns "Failed to get the schema name" for an inline one.
    used = set()
    for _method, _path, operation in operations(document).values():
        for response in operation["responses"].values():
            for content in response.get("content", {}).values():
                for example in content.get("examples", {}).values():
                    assert set(example) == {"$ref"}, example
                    used.add(example["$ref"].rsplit("/", 1)[-1])
    assert used == set(document["components"]["examples"])
    assert document["components"]["examples"]["rate_limited"]["value"]["error"] == "rate_limited"


def test_validation_error_examples_show_details_as_the_service_sends_them(document):
    from app.errors import summarise

    for operation_id, (_method, _path, operation) in operations(document).items():
        response = operation["responses"].get("400")
        example = response and response["content"]["application/json"]["examples"].get(
            "validation_error"
        )
        if example:
            value = resolve(document, example)["value"]
            assert value["details"], operation_id
            assert value["message"] == summarise(value["details"]), operation_id


def test_the_only_422_is_a_reused_idempotency_key(document):
    # Validation failures are 400 here, never flask-smorest's default 422.
    for operation_id, (_method, _path, operation) in operations(document).items():
        if operation_id in KEYED:
            assert operation["responses"]["422"]["x-error-codes"] == ["idempotency_key_reused"]
        else:
            assert "422" not in operation["responses"], operation_id


def test_the_keyed_operations_take_an_idempotency_key(document):
    parameter = document["components"]["parameters"]["IdempotencyKey"]
    assert (parameter["in"], parameter["name"], parameter["required"]) == (
        "header",
        "Idempotency-Key",
        False,
    )
    pattern = re.compile(parameter["schema"]["pattern"])
    for accepted in ("k", "8e03978e-40d5-43e8-bc93-6894a57f9324", "a b", "~" * 255, '"q"'):
        assert pattern.match(accepted), accepted
    quoted_255 = '"' + '\\"' * 255 + '"'
    assert pattern.match(quoted_255)
    assert len(quoted_255) <= parameter["schema"]["maxLength"]
    for refused in ("", " k", "k ", "~" * 256, '"', '"unterminated', '"a"b"', "é", "a\tb\n"):
        assert not pattern.match(refused), refused
    ref = {"$ref": "#/components/parameters/IdempotencyKey"}
    for operation_id, (_method, _path, operation) in operations(document).items():
        assert (ref in operation.get("parameters", [])) is (operation_id in KEYED), operation_id
    replayed = document["components"]["headers"]["Idempotent-Replayed"]
    assert replayed["schema"] == {"type": "string", "enum": ["true"]}


# --- security ---------------------------------------------------------------------------


def test_public_operations_say_so_and_the_rest_need_a_bearer_token(document):
    assert document["security"] == BEARER
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert {k: scheme[k] for k in ("type", "scheme", "bearerFormat")} == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    for operation_id, (_method, _path, operation) in operations(document).items():
        security = CONTRACT[operation_id][3]
        assert operation.get("security", document["security"]) == security, operation_id
        if security == PUBLIC:
            assert operation["security"] == [], operation_id
            assert "401" not in operation["responses"], operation_id
        else:
            assert "401" in operation["responses"], operation_id


# --- schemas --------------------------------------------------------------------------


def _response_schema_names(document: dict) -> set[str]:
    names = set()
    for _method, _path, operation in operations(document).values():
        for response in operation["responses"].values():
            ref = response.get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" in ref:
                names.add(ref["$ref"].rsplit("/", 1)[-1])
    return names


def _reachable(document: dict, names: set[str]) -> set[str]:
    """The named schemas, and every schema they refer to."""
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        text = json.dumps(document["components"]["schemas"][name])
        pending.extend(re.findall(r'"#/components/schemas/([A-Za-z]+)"', text))
    return seen


def test_the_envelope_is_a_named_component(document):
    # Not `Error`: that is a built-in type in TypeScript, Swift and Kotlin.
    assert "Error" not in document["components"]["schemas"]
    schema = document["components"]["schemas"]["ApiError"]
    assert set(schema["properties"]) == {"error", "message", "details"}
    assert set(schema["required"]) == {"error", "message"}
    assert schema["properties"]["details"]["items"] == {"$ref": "#/components/schemas/ErrorDetail"}
    assert re.fullmatch(schema["properties"]["error"]["pattern"], "invite_limit_reached")
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"field", "message"}


def test_response_schemas_mark_every_field_required(document):
    schemas = document["components"]["schemas"]
    for name in _reachable(document, _response_schema_names(document)) - {"ApiError"}:
        schema = schemas[name]
        if schema.get("type") == "object":
            assert set(schema.get("required", [])) == set(schema["properties"]), name


def test_response_schemas_let_clients_tolerate_new_fields(document):
    schemas = document["components"]["schemas"]
    for name in _reachable(document, _response_schema_names(document)):
        assert schemas[name].get("additionalProperties", True) is not False, name


def test_request_bodies_are_json_and_reject_unknown_fields(document):
    schemas = document["components"]["schemas"]
    found = operations(document)
    assert {oid for oid, (_m, _p, op) in found.items() if "requestBody" in op} == WITH_BODY
    for operation_id in WITH_BODY:
        content = found[operation_id][2]["requestBody"]["content"]
        assert set(content) == {"application/json"}, operation_id
        ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        assert schemas[ref]["additionalProperties"] is False, operation_id
    # Every field of an invite is optional, so an empty body is allowed.
    assert found["createInvite"][2]["requestBody"]["required"] is False
    assert found["createGroup"][2]["requestBody"]["required"] is True
    assert found["joinGroup"][2]["requestBody"]["required"] is True


def test_nothing_unused_is_in_the_components(document):
    used = _reachable(
        document,
        _response_schema_names(document)
        | {
            op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            for _m, _p, op in operations(document).values()
            if "requestBody" in op
        },
    )
    assert set(document["components"]["schemas"]) == used
    assert "responses" not in document["components"]


def _property(document: dict, schema: str, field: str) -> dict:
    return document["components"]["schemas"][schema]["properties"][field]


def _enum_of(document: dict, prop: dict) -> tuple[str, list[str]]:
    ref = prop["$ref"] if "$ref" in prop else prop["allOf"][0]["$ref"]
    name = ref.rsplit("/", 1)[-1]
    return name, resolve(document, {"$ref": ref})["enum"]


@pytest.mark.parametrize(
    ("schema", "field", "name", "values"),
    [
        ("Group", "your_role", "Role", ["owner", "admin", "member", "viewer"]),
        ("Membership", "role", "Role", ["owner", "admin", "member", "viewer"]),
        ("Redemption", "role", "Role", ["owner", "admin", "member", "viewer"]),
        ("InviteCreate", "preset_role", "PresetRole", ["admin", "member", "viewer"]),
        ("Invite", "preset_role", "PresetRole", ["admin", "member", "viewer"]),
        ("InviteSummary", "preset_role", "PresetRole", ["admin", "member", "viewer"]),
        ("InvitePreview", "preset_role", "PresetRole", ["admin", "member", "viewer"]),
        ("InviteDetail", "status", "InviteStatus", ["active", "expired", "exhausted", "revoked"]),
        ("InvitePreview", "status", "PreviewStatus", ["active", "expired", "exhausted"]),
    ],
)
def test_roles_and_statuses_are_named_enums(document, schema, field, name, values):
    assert _enum_of(document, _property(document, schema, field)) == (name, values)


def test_the_invite_defaults_are_documented_in_words(document):
    # Not as `default`: generators (openapi-typescript by default) read that as
    # "always present" and make the field required in the request body too.
    assert '"default"' not in json.dumps(document["components"])
    schema = document["components"]["schemas"]["InviteCreate"]
    assert "required" not in schema
    create = schema["properties"]
    assert 'Defaults to `"member"` when omitted.' in create["preset_role"]["description"]
    assert "Defaults to `1` when omitted." in create["max_uses"]["description"]
    assert (create["max_uses"]["example"], create["max_uses"]["minimum"]) == (1, 1)
    assert create["max_uses"]["maximum"] == 100
    assert "Defaults to `24` when omitted." in create["expires_in_hours"]["description"]
    assert create["expires_in_hours"]["example"] == 24
    assert (create["expires_in_hours"]["minimum"], create["expires_in_hours"]["maximum"]) == (
        1,
        168,
    )


@pytest.mark.parametrize(
    ("schema", "field", "bounds"),
    [
        ("GroupCreate", "name", {"minLength": 1, "maxLength": 100}),
        ("GroupCreate", "description", {"maxLength": 500}),
        ("GroupCreate", "icon_emoji", {"maxLength": 10}),
        ("Group", "name", {"minLength": 1, "maxLength": 100}),
        ("Group", "member_count", {"minimum": 1}),
        ("Invite", "max_uses", {"minimum": 1, "maximum": 100}),
        ("Invite", "current_uses", {"minimum": 0, "maximum": 100}),
        ("InviteSummary", "current_uses", {"minimum": 0, "maximum": 100}),
        ("PreviewGroup", "member_count", {"minimum": 1}),
        ("Join", "code", {"maxLength": MAX_INPUT_LENGTH, "pattern": CODE_INPUT_PATTERN}),
        # The `name` claim, cut by app/api/auth.py (the users table checks it too).
        ("UserRef", "display_name", {"minLength": 1, "maxLength": MAX_DISPLAY_NAME}),
        ("Redemption", "display_name", {"minLength": 1, "maxLength": MAX_DISPLAY_NAME}),
        # The live invites, at most MAX_ACTIVE_INVITES_PER_GROUP (by default).
        ("InviteList", "data", {"maxItems": from_env({})["MAX_ACTIVE_INVITES_PER_GROUP"]}),
        # One per use, and an invite has at most 100.
        ("RedemptionList", "data", {"maxItems": 100}),
    ],
)
def test_lengths_and_ranges_are_documented(document, schema, field, bounds):
    prop = _property(document, schema, field)
    assert {key: prop.get(key) for key in bounds} == bounds


def test_formats_are_documented(document):
    schemas = document["components"]["schemas"]
    for name, schema in schemas.items():
        for field, prop in schema.get("properties", {}).items():
            is_id = field == "id" or field.endswith("_id") or field == "created_by"
            if is_id and prop.get("type") == "string":
                assert prop["format"] == "uuid", (name, field)
            if field.endswith("_at"):
                assert prop["format"] == "date-time", (name, field)
    assert _property(document, "Invite", "invite_url")["format"] == "uri"


def test_issued_codes_match_the_documented_pattern(document):
    for schema in ("Invite", "InviteDetail", "InviteSummary"):
        assert _property(document, schema, "code")["pattern"] == CODE_PATTERN
    for _ in range(200):
        assert re.fullmatch(CODE_PATTERN, generate_code())


@pytest.mark.parametrize(
    ("raw", "accepted"),
    [
        ("ABC-234-XYZ", True),
        (" abc 234 xyz ", True),
        ("abc234xyz", True),
        ("a-b-c-2-3-4-x-y-z", True),
        ("\tABC\n234\rXYZ\x0b", True),
        ("ABC-234-XY", False),
        ("ABC-234-XYZW", False),
        ("ABO-234-XYZ", False),  # look-alikes can never have been issued
        ("abi-234-xyz", False),
        ("ABC_234_XYZ", False),
        ("ABC\u00a0234\u00a0XYZ", False),  # only ASCII whitespace separates
        ("\uff21\uff22\uff23-234-XYZ", False),  # fullwidth letters
        ("", False),
    ],
)
def test_the_documented_input_pattern_is_what_the_service_accepts(raw, accepted):
    matches = len(raw) <= MAX_INPUT_LENGTH and re.fullmatch(CODE_INPUT_PATTERN, raw) is not None
    code = normalise_code(raw)
    assert matches is accepted
    assert (code is not None and could_be_issued(code)) is accepted


def test_the_preview_path_parameter_documents_the_input_pattern(document):
    parameters = document["paths"]["/api/v1/invites/{code}"]["parameters"]
    assert parameters == [
        {
            "in": "path",
            "name": "code",
            "required": True,
            "schema": {
                "type": "string",
                "maxLength": MAX_INPUT_LENGTH,
                "pattern": CODE_INPUT_PATTERN,
                "example": "ABC-234-XYZ",
            },
        }
    ]


def test_path_ids_are_uuids(document):
    for path, item in document["paths"].items():
        for parameter in item.get("parameters", []):
            if parameter["name"].endswith("_id"):
                schema = parameter["schema"]
                assert (schema["type"], schema["format"]) == ("string", "uuid"), path
                assert set(schema) == {"type", "format", "example"}, path
                assert uuid.UUID(schema["example"]).version == 4, path


def test_every_field_of_every_schema_has_an_example_or_a_named_type(document):
    # Examples are what /docs and generated SDK docs show; enums and nested
    # objects explain themselves, booleans too.
    for name, schema in document["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            if "$ref" in prop or "allOf" in prop or prop.get("type") in {"array", "boolean"}:
                continue
            assert "example" in prop, (name, field)


# --- links --------------------------------------------------------------------------------


def test_links_lead_from_created_resources_to_what_uses_them(document):
    found = operations(document)
    group_links = found["createGroup"][2]["responses"]["201"]["links"]
    assert {link["operationId"] for link in group_links.values()} == {
        "getGroup",
        "createInvite",
        "listInvites",
    }
    for link in group_links.values():
        assert link["parameters"] == {"group_id": "$response.body#/id"}
    invite_links = found["createInvite"][2]["responses"]["201"]["links"]
    assert {link["operationId"] for link in invite_links.values()} == {
        "getInvite",
        "revokeInvite",
        "listInviteRedemptions",
        "getInvitePreview",
        "joinGroup",
    }
    assert invite_links["joinGroup"]["requestBody"] == {"code": "$response.body#/code"}
    assert invite_links["getInvitePreview"]["parameters"] == {"code": "$response.body#/code"}
    for link in invite_links.values():
        target = found[link["operationId"]]
        names = set(re.findall(r"{(\w+)}", target[1]))
        assert set(link.get("parameters", {})) == names, link
