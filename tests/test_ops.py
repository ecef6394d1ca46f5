"""Health, docs, the error envelope for plain HTTP errors, 500s and request logs."""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy as sa

from app import create_app
from app.config import ConfigError
from app.migrate import discover


def test_healthz(client):
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readyz(client):
    response = client.get("/readyz")
    assert (response.status_code, response.get_json()) == (
        200,
        {
            "status": "ok",
            "checks": {"database": "ok", "migrations": "ok", "rate_limit_store": "ok"},
        },
    )


def test_readyz_says_which_migrations_are_missing(make_app, db):
    # The app's engine pointed at an empty schema: a database this release has not migrated.
    app = make_app()
    app.extensions["db_engine"] = db
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    versions = [m.version for m in discover()]
    assert response.get_json() == {
        "error": "service_unavailable",
        "message": "Not ready: migrations.",
        "details": [
            {
                "field": "migrations",
                "message": f"{len(versions)} migration(s) of this release not applied.",
            }
        ],
    }
    with db.begin() as conn:
        conn.execute(sa.text("CREATE TABLE schema_migrations (version text PRIMARY KEY)"))
        for version in versions[:-1]:
            conn.execute(sa.text("INSERT INTO schema_migrations VALUES (:v)"), {"v": version})
    response = client.get("/readyz")
    assert response.status_code == 503
    assert (
        response.get_json()["details"][0]["message"]
        == "1 migration(s) of this release not applied."
    )
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO schema_migrations VALUES (:v)"), {"v": versions[-1]})
    assert client.get("/readyz").status_code == 200


def test_readyz_stays_ready_without_the_rate_limit_store(make_app):
    # Nothing listens on port 1: limits are counted per process, and the
    # instance stays in rotation (tests/test_limit_store_outage.py stops a real one).
    app = make_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1")
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "rate_limit_store": "degraded",
    }


def test_readyz_without_a_database(make_app):
    # Nothing listens on port 1; the app must still start and say it is not ready.
    app = make_app(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none")
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["error"] == "service_unavailable"
    assert response.get_json()["details"] == [
        {"field": "database", "message": "The database cannot be reached."}
    ]
    assert "Retry-After" in response.headers


def test_database_outage_is_a_503_not_a_traceback(make_app, api):
    app = make_app(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none")
    response = app.test_client().post(
        "/api/v1/groups", json={"name": "G"}, headers=api.user("U").headers
    )
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "service_unavailable"
    assert "127.0.0.1" not in response.get_data(as_text=True)


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert "/api/v1/groups/join" in spec.get_json()["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.get_data(as_text=True).lower()


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/api/v1/invites", 404, "not_found"),
        ("PUT", "/api/v1/groups", 405, "method_not_allowed"),
        ("PATCH", "/api/v1/invites/ABC-234-XYZ", 405, "method_not_allowed"),
        ("GET", "/api/v1/groups/join", 405, "method_not_allowed"),
        ("DELETE", "/api/v1/groups/join", 405, "method_not_allowed"),
    ],
)
def test_plain_http_errors_use_the_envelope(client, method, path, status, error):
    response = client.open(path, method=method)
    assert response.status_code == status
    body = response.get_json()
    assert body["error"] == error
    assert isinstance(body["message"], str)
    if status == 405:
        assert "Allow" in response.headers


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/groups/join%0A",
        "/api/v1/groups/join/invites",
        "/api/v1/groups/0b7e5a8e-3c4d-4f6a-9b1c-2d3e4f5a6b7c/invites/join",
    ],
)
def test_join_is_only_special_right_after_groups(client, owner, path):
    """Anywhere else "join" is a malformed id: 400 naming it, not a routing 404."""
    response = client.get(path, headers=owner.headers)
    assert response.status_code == 400
    assert response.get_json()["error"] == "validation_error"


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/v1/groups", {"POST", "OPTIONS"}),
        ("/api/v1/groups/join", {"POST", "OPTIONS"}),
        ("/api/v1/groups/0b7e5a8e-3c4d-4f6a-9b1c-2d3e4f5a6b7c", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_allow_lists_only_the_documented_methods(client, path, allowed):
    """What OPTIONS (and a 405) advertise is what the document has for the path."""
    response = client.options(path)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == allowed
    documented = client.get("/openapi.json").get_json()["paths"]
    template = path if path in documented else "/api/v1/groups/{group_id}"
    methods = {m.upper() for m in documented[template] if m != "parameters"}
    assert methods == allowed - {"HEAD", "OPTIONS"}


def test_unexpected_errors_hide_internals_and_are_logged(make_app, caplog):
    app = make_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail: password=hunter2 code ABC-234-XYZ")

    with caplog.at_level(logging.ERROR, logger="app.errors"):
        response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal_error",
        "message": "An unexpected error occurred.",
    }
    assert "hunter2" not in response.get_data(as_text=True)
    logged = [r for r in caplog.records if r.name == "app.errors"]
    assert logged
    assert logged[0].exc_info is not None  # the traceback is kept for the operators


def test_one_log_line_per_request_without_the_code(make_app, api, owner, group, caplog):
    invite = api.create_invite(owner, group["id"])
    behind_gateway = make_app(TRUSTED_PROXY_COUNT=1).test_client()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="app.request"):
        behind_gateway.get(f"/api/v1/invites/{invite['code']}", headers={"X-Request-ID": "req-42"})
        api.join(api.user("Joiner"), invite["code"])
    lines = [r.getMessage() for r in caplog.records if r.name == "app.request"]
    assert len(lines) == 2
    assert lines[0].startswith("GET /api/v1/invites/{code} 200 ")
    assert "request_id=req-42" in lines[0]
    assert " client=127.0.0.1 user=-" in lines[0]  # no token, no user
    assert lines[1].startswith("POST /api/v1/groups/join 200 ")
    assert re.search(
        r" user=[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", lines[1]
    )
    code_body = invite["code"][4:]
    for line in lines:
        assert code_body not in line
        assert "Bearer" not in line


def test_redacting_formatter_masks_codes_in_tracebacks():
    from app.logs import RedactingFormatter

    try:
        raise ValueError("duplicate key (code)=(ABC-234-XYZ)")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed for abc-234-xyz", None, sys.exc_info()
        )
    text = RedactingFormatter("%(message)s").format(record)
    assert "234-XYZ" not in text.upper()
    assert "ABC-***-***" in text


def test_the_gateways_request_id_is_kept_and_a_bad_one_replaced(make_app):
    behind_gateway = make_app(TRUSTED_PROXY_COUNT=1).test_client()
    assert (
        behind_gateway.get("/healthz", headers={"X-Request-ID": "abc.123"}).headers["X-Request-ID"]
        == "abc.123"
    )
    generated = behind_gateway.get("/healthz", headers={"X-Request-ID": "bad id"})
    assert generated.headers["X-Request-ID"] != "bad id"
    assert len(generated.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize("chosen", ["abc.123", "ABC234XYZ", "abc-234-xyz", "K7M2QXHP9"])
def test_a_client_chosen_request_id_is_never_used(client, caplog, chosen):
    # Without a trusted gateway the id comes from the client, who could put a
    # code in it (with or without dashes) and so into every log line.
    with caplog.at_level(logging.INFO, logger="app.request"):
        response = client.get("/healthz", headers={"X-Request-ID": chosen})
    assert response.headers["X-Request-ID"] != chosen
    assert len(response.headers["X-Request-ID"]) == 32
    assert all(chosen.lower() not in r.getMessage().lower() for r in caplog.records)


def test_production_refuses_weak_or_missing_secrets(database_url):
    base = {"DATABASE_URL": database_url, "APP_ENV": "production"}
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY"):
        create_app({**base, "JWT_SECRET_KEY": None})
    with pytest.raises(ConfigError, match="at least 32"):
        create_app({**base, "JWT_SECRET_KEY": "short"})
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        create_app({"APP_ENV": "production", "JWT_SECRET_KEY": "x" * 40, "DATABASE_URL": None})


def test_exhausted_connection_pool_is_a_503(make_app, api):
    app = make_app(DB_POOL_SIZE=1, DB_POOL_TIMEOUT_S=1)
    engine = app.extensions["db_engine"]
    held = [engine.connect(), engine.connect()]  # pool of 1 plus 1 overflow, both taken
    try:
        response = app.test_client().post(
            "/api/v1/groups", json={"name": "G"}, headers=api.user("U").headers
        )
    finally:
        for conn in held:
            conn.close()
    assert response.status_code == 503
    assert response.get_json()["error"] == "service_unavailable"
    assert response.headers["Retry-After"] == "5"
