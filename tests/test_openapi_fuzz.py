"""The app fuzzed, in process, from its own OpenAPI document.

The fuzzing uses Schemathesis (v4) through the WSGI app, so no server or
network is involved (`make fuzz` does the same against a real gunicorn, with
stateful sequences). Requests carry the token of a user who owns a real group
with a real invite, so group-scoped operations are reachable; each operation
is also fuzzed with generated path parameters and with invalid (negative)
data. Every response must be documented (status, headers, body schema), no
response may be a 5xx, and every 4xx must be the contract's error envelope.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks as openapi_checks

from tests.helpers import ApiDriver
from tests.test_openapi_document import CONTRACT

ERROR_CODE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@pytest.fixture(scope="module")
def fuzz_app(make_app):
    return make_app()


@pytest.fixture(scope="module")
def document(fuzz_app) -> dict:
    response = fuzz_app.test_client().get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_the_docs_are_public(fuzz_app):
    client = fuzz_app.test_client()
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


# --- fuzzing ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)


@pytest.fixture
def world(fuzz_app, engine) -> dict:
    """An owner with a group and a live invite, and a stranger; fresh for each test."""
    api = ApiDriver(fuzz_app.test_client(), engine)
    owner = api.user("Fuzz Owner")
    group = api.create_group(owner, name="Fuzzed Family")
    invite = api.create_invite(owner, group["id"], max_uses=5)
    return {
        "owner": owner,
        "stranger": api.user("Fuzz Stranger"),
        "path_parameters": {
            "group_id": group["id"],
            "invite_id": invite["id"],
            "code": invite["code"],
        },
    }


def _assert_error_envelope(response) -> None:
    """Every 4xx and 5xx is ``{error, message[, details]}``."""
    if response.status_code < 400:
        return
    # Schemathesis's response: lower-case header names, a list of values each.
    assert response.headers["content-type"][0].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) in ({"error", "message"}, {"error", "message", "details"}), body
    assert isinstance(body["error"], str)
    assert ERROR_CODE.match(body["error"]), body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert "Traceback" not in body["message"]
    if "details" in body:
        assert body["error"] == "validation_error", body
        assert body["details"], body
        for item in body["details"]:
            assert set(item) == {"field", "message"}, item
            assert all(isinstance(v, str) for v in item.values()), item
    if response.status_code == 401:
        assert response.headers.get("www-authenticate") == ["Bearer"]


def _assert_status_is_documented(case, response) -> None:
    """Stricter than Schemathesis's check, for which the catch-all 'default' documents all."""
    documented = {s for s in case.operation.definition.raw["responses"] if s != "default"}
    assert str(response.status_code) in documented, (
        f"{case.operation.label} answered {response.status_code}, "
        f"documented: {sorted(documented)}; body: {response.text[:300]}"
    )


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        node = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _assert_documented_fields_present(document: dict, schema: dict, value, where: str) -> None:
    """Every documented field is in the body, nested ones included (the contract lists them)."""
    schema = _resolve(document, schema)
    if isinstance(value, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            assert name in value, f"{where}: `{name}` is documented but missing"
            _assert_documented_fields_present(document, sub, value[name], f"{where}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _assert_documented_fields_present(document, schema["items"], item, f"{where}[{index}]")


def _assert_success_is_complete(document: dict, case, response) -> None:
    if not 200 <= response.status_code < 300:
        return
    definition = case.operation.definition.raw["responses"][str(response.status_code)]
    if response.status_code == 201:
        assert response.headers["location"][0].startswith("/api/v1/groups/"), response.headers
    if "content" not in definition:
        assert response.content == b"", response.content
        return
    schema = definition["content"]["application/json"]["schema"]
    _assert_documented_fields_present(document, schema, response.json(), case.operation.label)


CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]
NEGATIVE_CHECKS = [*CHECKS, openapi_checks.negative_data_rejection]

FUZZ_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

# Each operation with the ways it is fuzzed: "real" fixes the path parameters
# to the owner's group and invite, "generated" lets Schemathesis make them up.
# Negative data needs something to negate: a body or a UUID path parameter.
RUNS = [
    ("post", "/api/v1/groups", "positive", "real"),
    ("post", "/api/v1/groups", "negative", "real"),
    ("get", "/api/v1/groups/{group_id}", "positive", "real"),
    ("get", "/api/v1/groups/{group_id}", "positive", "generated"),
    ("get", "/api/v1/groups/{group_id}", "negative", "generated"),
    ("post", "/api/v1/groups/join", "positive", "real"),
    ("post", "/api/v1/groups/join", "negative", "real"),
    # A stranger joins with the real code: 200 with a JoinResult.
    ("post", "/api/v1/groups/join", "positive", "code"),
    ("get", "/api/v1/groups/{group_id}/invites", "positive", "real"),
    ("get", "/api/v1/groups/{group_id}/invites", "positive", "generated"),
    ("get", "/api/v1/groups/{group_id}/invites", "negative", "generated"),
    ("post", "/api/v1/groups/{group_id}/invites", "positive", "real"),
    ("post", "/api/v1/groups/{group_id}/invites", "positive", "generated"),
    ("post", "/api/v1/groups/{group_id}/invites", "negative", "real"),
    ("post", "/api/v1/groups/{group_id}/invites", "negative", "generated"),
    ("get", "/api/v1/groups/{group_id}/invites/{invite_id}", "positive", "real"),
    ("get", "/api/v1/groups/{group_id}/invites/{invite_id}", "positive", "generated"),
    ("get", "/api/v1/groups/{group_id}/invites/{invite_id}", "negative", "generated"),
    ("delete", "/api/v1/groups/{group_id}/invites/{invite_id}", "positive", "real"),
    ("delete", "/api/v1/groups/{group_id}/invites/{invite_id}", "positive", "generated"),
    ("delete", "/api/v1/groups/{group_id}/invites/{invite_id}", "negative", "generated"),
    ("get", "/api/v1/groups/{group_id}/invites/{invite_id}/redemptions", "positive", "real"),
    ("get", "/api/v1/groups/{group_id}/invites/{invite_id}/redemptions", "positive", "generated"),
    ("get", "/api/v1/groups/{group_id}/invites/{invite_id}/redemptions", "negative", "generated"),
    ("get", "/api/v1/invites/{code}", "positive", "real"),
    ("get", "/api/v1/invites/{code}", "positive", "generated"),
    ("get", "/healthz", "positive", "real"),
    ("get", "/readyz", "positive", "real"),
]


def test_every_operation_is_fuzzed():
    contract = {(method, path) for method, path, _statuses, _security in CONTRACT.values()}
    assert {(method, path) for method, path, _mode, _params in RUNS} == contract


@pytest.mark.parametrize(
    ("method", "path", "mode", "params"), RUNS, ids=[" ".join(run) for run in RUNS]
)
def test_fuzz_operation(schema, document, world, method, path, mode, params):
    operation = schema[path][method.upper()]
    names = {parameter.name for parameter in operation.path_parameters}
    fixed = {name: world["path_parameters"][name] for name in names} if params == "real" else None
    user = world["owner"]
    extra = {}
    if params == "code":
        user = world["stranger"]
        extra["body"] = {"code": world["path_parameters"]["code"]}
    strategy = operation.as_strategy(
        generation_mode=GenerationMode(mode),
        path_parameters=fixed or None,
        headers={"Authorization": f"Bearer {user.token}"},
        **extra,
    )
    checks = NEGATIVE_CHECKS if mode == "negative" else CHECKS

    @FUZZ_SETTINGS
    @given(case=strategy)
    def fuzz(case):
        response = case.call()
        _assert_error_envelope(response)
        _assert_status_is_documented(case, response)
        _assert_success_is_complete(document, case, response)
        case.validate_response(response, checks=checks)

    fuzz()
