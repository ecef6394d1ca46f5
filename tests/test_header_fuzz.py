"""No header value produces a 5xx: Authorization, Idempotency-Key, X-Request-ID and
the forwarding headers, fuzzed with Hypothesis through the app (behind one
trusted proxy, so the forwarding headers are read)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import make_token

# What a header can carry through a real server: latin-1 text without line breaks.
_HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=120,
)
_TRICKY = st.sampled_from(
    [
        ", ,",
        ",",
        " , Bearer x",
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer ,",
        "bearer\t",
        "Basic dXNlcjpwYXNz",
        "Bearer e30.e30.",
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
        '"',
        '""',
        '"\\"',
        "1.2.3.4, , 5.6.7.8",
        "::1",
        "[::1]:80",
        "https, http",
        "",
    ]
)
_VALUE = st.one_of(_TRICKY, _HEADER_TEXT)
HEADERS = (
    "Authorization",
    "Idempotency-Key",
    "X-Request-ID",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
)


@pytest.fixture(scope="module")
def proxied_client(make_app):
    return make_app(TRUSTED_PROXY_COUNT=1).test_client()


@pytest.mark.parametrize("value", [", ,", ",", " , ", "Bearer x, ,", ", Bearer"])
def test_a_blank_credential_is_a_401(client, value):
    response = client.post("/api/v1/groups", json={"name": "G"}, headers={"Authorization": value})
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    headers=st.dictionaries(st.sampled_from(HEADERS), _VALUE, min_size=1, max_size=4),
    target=st.sampled_from(["create", "join", "preview", "health"]),
    with_token=st.booleans(),
)
def test_no_header_value_is_a_5xx(proxied_client, headers, target, with_token):
    if with_token and "Authorization" not in headers:
        headers = {**headers, "Authorization": f"Bearer {make_token()}"}
    if target == "create":
        response = proxied_client.post("/api/v1/groups", json={"name": "Fuzz"}, headers=headers)
    elif target == "join":
        response = proxied_client.post(
            "/api/v1/groups/join", json={"code": "ZZZ-ZZZ-ZZZ"}, headers=headers
        )
    elif target == "preview":
        response = proxied_client.get("/api/v1/invites/ZZZ-ZZZ-ZZZ", headers=headers)
    else:
        response = proxied_client.get("/healthz", headers=headers)
    assert response.status_code < 500, (headers, response.get_data(as_text=True))
    if response.status_code >= 400:
        body = response.get_json()
        assert set(body) <= {"error", "message", "details"}, body
        assert body["error"] in {
            # A forwarded Host that is no host name ("."): routing refuses it.
            "bad_request",
            "unauthorized",
            "validation_error",
            "invite_not_found",
            "idempotency_key_reused",
            "idempotency_key_in_use",
        }, body
