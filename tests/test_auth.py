"""Bearer-token verification: every failure is our 401 envelope."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.helpers import bearer, make_token

PROTECTED = ("GET", "/api/v1/groups/00000000-0000-4000-8000-000000000000/invites")


def _assert_unauthorized(response):
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json() == {
        "error": "unauthorized",
        "message": "A valid bearer token is required.",
    }


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _request(client, headers):
    method, path = PROTECTED
    return client.open(path, method=method, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Bearer a.b.c"},
        {"Authorization": "Token " + make_token()},
    ],
    ids=["missing", "empty", "no-token", "blank", "basic", "garbage", "bad-segments", "scheme"],
)
def test_missing_or_malformed_token(client, headers):
    _assert_unauthorized(_request(client, headers))


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_case_insensitive(client, scheme):
    # RFC 9110 11.1: auth schemes are case-insensitive.
    response = client.post(
        "/api/v1/groups",
        json={"name": "Any case"},
        headers={"Authorization": f"{scheme} {make_token()}"},
    )
    assert response.status_code == 201


def test_a_lower_case_credential_beside_another_is_ambiguous_and_refused(client):
    # Read case-sensitively, "bearer A" would be skipped and "Bearer B" used;
    # read as the same scheme, two credentials are refused rather than picked.
    value = f"bearer {make_token()}, Bearer {make_token()}"
    _assert_unauthorized(_request(client, {"Authorization": value}))


@pytest.mark.parametrize(
    "token",
    [
        make_token(expires_in=-60),
        make_token(secret="another-secret-another-secret-another-secret"),
        make_token(expires_in=None),
        make_token(sub="not-a-uuid"),
        make_token(sub="12345"),
        make_token(type="refresh"),
        make_token(token_type="refresh"),
    ],
    ids=["expired", "wrong-key", "no-exp", "sub-not-uuid", "sub-number", "refresh", "token-type"],
)
def test_rejected_tokens(client, token):
    _assert_unauthorized(_request(client, bearer(token)))


def test_token_without_sub_is_rejected(client):
    import datetime as dt

    import jwt

    from tests.helpers import JWT_SECRET

    exp = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    token = jwt.encode({"exp": exp, "name": "x"}, JWT_SECRET, algorithm="HS256")
    _assert_unauthorized(_request(client, bearer(token)))


def test_alg_none_is_rejected(client):
    header = _b64({"alg": "none", "typ": "JWT"})
    payload = _b64({"sub": str(uuid.uuid4()), "exp": 4102444800})
    _assert_unauthorized(_request(client, bearer(f"{header}.{payload}.")))


def test_other_hmac_algorithm_is_rejected(client):
    _assert_unauthorized(_request(client, bearer(make_token(algorithm="HS512"))))


def test_valid_token_reaches_the_service(client):
    response = _request(client, bearer(make_token()))
    # Authenticated, but not a member of that (nonexistent) group.
    assert response.status_code == 404
    assert response.get_json()["error"] == "group_not_found"


def test_auth_is_checked_before_the_body(client):
    response = client.post("/api/v1/groups", data="{not json", content_type="application/json")
    _assert_unauthorized(response)


def test_writes_record_the_user_from_the_claims(api, sql):
    user = api.user("Ada Lovelace")
    api.create_group(user)
    assert sql("SELECT display_name FROM users WHERE id = :id", id=user.id) == [
        {"display_name": "Ada Lovelace"}
    ]
    renamed = make_token(str(user.id), name="  Ada King  ")
    assert (
        api.client.post(
            "/api/v1/groups", json={"name": "Second"}, headers=bearer(renamed)
        ).status_code
        == 201
    )
    assert sql("SELECT display_name FROM users WHERE id = :id", id=user.id) == [
        {"display_name": "Ada King"}
    ]
    # A later token without a name keeps the one we know.
    nameless = make_token(str(user.id))
    assert (
        api.client.post(
            "/api/v1/groups", json={"name": "Third"}, headers=bearer(nameless)
        ).status_code
        == 201
    )
    assert sql("SELECT display_name FROM users WHERE id = :id", id=user.id) == [
        {"display_name": "Ada King"}
    ]


def test_junk_name_claim_is_ignored_not_fatal(api, sql):
    user_id = uuid.uuid4()
    token = make_token(str(user_id), name={"first": "Ada"})
    response = api.client.post("/api/v1/groups", json={"name": "G"}, headers=bearer(token))
    assert response.status_code == 201
    assert sql("SELECT display_name FROM users WHERE id = :id", id=user_id) == [
        {"display_name": None}
    ]


def test_reads_do_not_create_users(api, sql):
    user = api.user("Reader")
    api.client.get(f"/api/v1/groups/{uuid.uuid4()}", headers=user.headers)
    assert sql("SELECT count(*) AS n FROM users WHERE id = :id", id=user.id) == [{"n": 0}]


class TestIssuerAndAudience:
    @pytest.fixture
    def strict_client(self, make_app):
        app = make_app(JWT_DECODE_ISSUER="https://id.example", JWT_DECODE_AUDIENCE="invites")
        return app.test_client()

    def test_matching_claims_pass(self, strict_client):
        token = make_token(iss="https://id.example", aud="invites")
        assert _request(strict_client, bearer(token)).status_code == 404

    @pytest.mark.parametrize(
        "claims",
        [
            {"iss": "https://id.example", "aud": "someone-else"},
            {"iss": "https://evil.example", "aud": "invites"},
            {"aud": "invites"},
            {"iss": "https://id.example"},
        ],
        ids=["wrong-aud", "wrong-iss", "no-iss", "no-aud"],
    )
    def test_mismatches_are_rejected(self, strict_client, claims):
        _assert_unauthorized(_request(strict_client, bearer(make_token(**claims))))


def _pem_public(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _pem_private(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class TestAsymmetricKeys:
    @pytest.fixture
    def rsa_key(self):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @pytest.fixture
    def rs256_client(self, make_app, rsa_key):
        app = make_app(
            JWT_ALGORITHM="RS256",
            JWT_DECODE_ALGORITHMS=["RS256"],
            JWT_PUBLIC_KEY=_pem_public(rsa_key),
            JWT_SECRET_KEY=None,
        )
        return app.test_client()

    def test_rs256_token_accepted(self, rs256_client, rsa_key):
        token = make_token(secret=_pem_private(rsa_key), algorithm="RS256")
        assert _request(rs256_client, bearer(token)).status_code == 404

    def test_hs256_signed_with_the_public_key_is_rejected(self, rs256_client, rsa_key):
        # The classic algorithm-confusion attack: HMAC keyed with the public PEM.
        import hashlib
        import hmac

        header = _b64({"alg": "HS256", "typ": "JWT"})
        payload = _b64({"sub": str(uuid.uuid4()), "exp": 4102444800})
        signing_input = f"{header}.{payload}".encode()
        signature = hmac.new(_pem_public(rsa_key).encode(), signing_input, hashlib.sha256)
        sig = base64.urlsafe_b64encode(signature.digest()).rstrip(b"=").decode()
        _assert_unauthorized(_request(rs256_client, bearer(f"{header}.{payload}.{sig}")))

    def test_token_from_another_rsa_key_is_rejected(self, rs256_client):
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = make_token(secret=_pem_private(other), algorithm="RS256")
        _assert_unauthorized(_request(rs256_client, bearer(token)))

    def test_es256(self, make_app):
        key = ec.generate_private_key(ec.SECP256R1())
        app = make_app(
            JWT_ALGORITHM="ES256",
            JWT_DECODE_ALGORITHMS=["ES256"],
            JWT_PUBLIC_KEY=_pem_public(key),
            JWT_SECRET_KEY=None,
        )
        token = make_token(secret=_pem_private(key), algorithm="ES256")
        assert _request(app.test_client(), bearer(token)).status_code == 404
        _assert_unauthorized(_request(app.test_client(), bearer(make_token())))


def test_users_table_untouched_by_rejected_token(client, engine):
    user_id = uuid.uuid4()
    token = make_token(str(user_id), expires_in=-5)
    client.post("/api/v1/groups", json={"name": "x"}, headers=bearer(token))
    with engine.connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM users WHERE id = :id"), {"id": user_id}
        ).scalar()
    assert count == 0


# --- verified tokens are remembered (app.api.auth.VerifiedTokens) --------------

OWN_GROUPS = "/api/v1/groups"


def test_a_remembered_token_is_refused_once_it_expires(app):
    client = app.test_client()
    token = make_token(expires_in=1)
    assert client.post(OWN_GROUPS, headers=bearer(token), json={"name": "A"}).status_code == 201
    assert client.post(OWN_GROUPS, headers=bearer(token), json={"name": "B"}).status_code == 201
    assert app.extensions["verified_tokens"].get(token) is not None
    exp = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    _assert_unauthorized(client.post(OWN_GROUPS, headers=bearer(token), json={"name": "C"}))


def test_a_token_verified_by_one_app_is_not_taken_by_another_with_another_key(app, make_app):
    other = make_app(JWT_SECRET_KEY="another-secret-" + "x" * 40)
    token = make_token()  # signed with the secret of `app`
    assert _request(app.test_client(), bearer(token)).status_code == 404  # verified: no such group
    assert app.extensions["verified_tokens"].get(token) is not None
    _assert_unauthorized(_request(other.test_client(), bearer(token)))
    assert other.extensions["verified_tokens"].get(token) is None


def test_a_token_that_fails_is_never_remembered(app):
    forged = make_token(secret="not-the-secret-" + "x" * 40)
    for _ in range(2):
        _assert_unauthorized(_request(app.test_client(), bearer(forged)))
    assert app.extensions["verified_tokens"].get(forged) is None


@pytest.mark.parametrize(
    "claims", [{"type": "refresh"}, {"sub": "not-a-uuid"}], ids=["refresh", "sub-not-uuid"]
)
def test_a_token_our_claim_checks_refuse_is_never_remembered(app, claims):
    """Signed with the right key, so it decodes; refused after that, every time."""
    token = make_token(**claims)
    for _ in range(2):
        _assert_unauthorized(_request(app.test_client(), bearer(token)))
    assert app.extensions["verified_tokens"].get(token) is None


def test_a_remembered_token_in_another_header_form_still_gets_in(app):
    token = make_token()
    assert _request(app.test_client(), bearer(token)).status_code == 404
    assert app.extensions["verified_tokens"].get(token) is not None
    for value in (f"bearer {token}", f"Bearer {token}, Basic abc", f"  Bearer   {token}"):
        response = _request(app.test_client(), {"Authorization": value})
        assert response.status_code == 404, value  # verified: no such group


def test_verified_tokens_keep_at_most_their_size_oldest_out_first():
    from app.api.auth import VerifiedTokens

    tokens = VerifiedTokens(leeway_s=0, size=2)
    exp = time.time() + 60
    for name in ("a", "b", "c"):
        tokens.put(name, {"exp": exp})
    assert [tokens.get(name) is not None for name in ("a", "b", "c")] == [False, True, True]
    tokens.put("no-exp", {"sub": "x"})
    tokens.put("bool-exp", {"exp": True})
    assert tokens.get("no-exp") is None
    assert tokens.get("bool-exp") is None
    tokens.put("late", {"exp": time.time() - 5})
    assert tokens.get("late") is None  # expired: not served even if remembered
    assert VerifiedTokens(leeway_s=10).get("x") is None
    leeway = VerifiedTokens(leeway_s=10)
    leeway.put("recent", {"exp": time.time() - 5})
    assert leeway.get("recent") is not None  # within the leeway, as PyJWT allows
    # PyJWT cuts a fractional exp: at or past its whole second the token is expired.
    whole = int(time.time())
    tokens.put("fraction", {"exp": whole + 0.999999})
    assert tokens.get("fraction") is None
    tokens.put("next-second", {"exp": whole + 2.5})
    assert tokens.get("next-second") is not None
