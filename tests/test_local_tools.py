"""`make token` (app.token), the development secret and the embedded PostgreSQL's
handle list (app.local)."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import uuid

import jwt
import pytest

from app import local, token
from tests.helpers import JWT_SECRET, bearer


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "DATA_DIR", tmp_path)
    monkeypatch.setattr(local, "DEV_SECRET_FILE", tmp_path / "dev-jwt-secret")
    for name in ("JWT_SECRET_KEY", "JWT_ALGORITHM", "APP_ENV", "JWT_DECODE_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("JWT_DECODE_ISSUER", raising=False)
    return tmp_path


def test_token_signs_with_jwt_secret_key_and_the_service_accepts_it(
    data_dir, monkeypatch, capsys, client
):
    monkeypatch.setenv("JWT_SECRET_KEY", JWT_SECRET)
    subject = uuid.uuid4()
    assert token.main(["--sub", str(subject), "--name", "Alice", "--hours", "2"]) == 0
    minted = capsys.readouterr().out.strip()
    claims = jwt.decode(minted, JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == str(subject)
    assert claims["name"] == "Alice"
    assert claims["exp"] - claims["iat"] == 2 * 3600
    response = client.post("/api/v1/groups", json={"name": "Minted"}, headers=bearer(minted))
    assert response.status_code == 201


def test_token_carries_the_configured_audience_and_issuer(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("JWT_SECRET_KEY", JWT_SECRET)
    monkeypatch.setenv("JWT_DECODE_AUDIENCE", "invites")
    monkeypatch.setenv("JWT_DECODE_ISSUER", "https://id.example")
    assert token.main([]) == 0
    claims = jwt.decode(
        capsys.readouterr().out.strip(),
        JWT_SECRET,
        algorithms=["HS256"],
        audience="invites",
        issuer="https://id.example",
    )
    uuid.UUID(claims["sub"])  # a fresh user id when none is given


def test_token_refuses_without_a_secret(data_dir, capsys):
    assert token.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "refusing without a secret" in captured.err


def test_token_refuses_for_asymmetric_algorithms(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("JWT_ALGORITHM", "RS256")
    monkeypatch.setenv("JWT_SECRET_KEY", JWT_SECRET)
    assert token.main([]) == 2
    assert capsys.readouterr().out == ""


def test_dev_secret_is_made_once_private_and_used_by_token(data_dir, capsys):
    assert local.dev_jwt_secret(create=False) is None
    secret = local.dev_jwt_secret(create=True)
    assert len(secret) >= 64
    mode = stat.S_IMODE((data_dir / "dev-jwt-secret").stat().st_mode)
    assert mode == 0o600
    assert local.dev_jwt_secret(create=True) == secret  # not regenerated
    assert token.main(["--name", "Dev"]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), secret, algorithms=["HS256"])
    assert claims["name"] == "Dev"


def test_production_never_uses_the_dev_secret(data_dir, monkeypatch, capsys):
    local.dev_jwt_secret(create=True)
    monkeypatch.setenv("APP_ENV", "production")
    assert local.dev_jwt_secret(create=True) is None
    assert token.main([]) == 2
    capsys.readouterr()


def test_production_refuses_the_embedded_database(data_dir, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(RuntimeError, match="DATABASE_URL is required"):
        local.ensure_database_url()


def test_a_set_database_url_starts_nothing(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://example/db")
    assert local.ensure_database_url() == ("postgresql://example/db", None)


@pytest.mark.parametrize(
    "garbage", ["[12345, 678", '{"pids": [1]}', "", '["x"]', "[-1]", "[0]", "[true]"]
)
def test_an_unreadable_handle_list_is_started_afresh(tmp_path, caplog, garbage):
    # pgserver rewrites this file in place: a crash mid-write leaves it like this.
    handles = tmp_path / ".handle_pids.json"
    handles.write_text(garbage)
    with caplog.at_level(logging.WARNING, logger="app.local"):
        local.forget_dead_pgserver_handles(tmp_path)
    assert json.loads(handles.read_text()) == []
    assert "unreadable" in caplog.text


def test_live_holders_are_kept_and_dead_ones_forgotten(tmp_path, caplog):
    handles = tmp_path / ".handle_pids.json"
    dead = subprocess.Popen(["true"])
    dead.wait()
    handles.write_text(json.dumps([os.getpid(), dead.pid]))
    with caplog.at_level(logging.WARNING, logger="app.local"):
        local.forget_dead_pgserver_handles(tmp_path)
    assert json.loads(handles.read_text()) == [os.getpid()]
    assert f"forgetting handles of dead processes [{dead.pid}]" in caplog.text
