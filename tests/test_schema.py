"""The real schema (migrations/*.sql) and the constraints it enforces, on real PostgreSQL.

Each test applies the migrations to its own fresh schema (the ``db`` fixture
in conftest.py), so constraint violations never touch the shared test data.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from app.code_keys import CodeKeyring
from app.migrate import MIGRATIONS_DIR, upgrade
from tests.helpers import CODE_KEYS, columns_of, scalar, table_exists


def test_the_real_migrations_apply_to_a_fresh_schema(db):
    expected = sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))
    assert upgrade(db, MIGRATIONS_DIR) == expected
    assert upgrade(db, MIGRATIONS_DIR) == []
    tables = ("users", "groups", "group_memberships", "group_invites", "idempotency_keys")
    for table in (*tables, "schema_migrations"):
        assert table_exists(db, table), table
    columns = columns_of(db, "group_invites")
    # No column holds a usable code: a keyed digest finds it, the sealed copy gives it back.
    assert "code" not in columns
    assert {
        "id",
        "group_id",
        "code_digest",
        "code_sealed",
        "code_key",
        "preset_role",
        "max_uses",
        "current_uses",
        "expires_at",
        "created_by",
        "created_at",
        "revoked_at",
        "revoked_by",
    } <= columns


@pytest.fixture
def real_schema(db):
    """The real migrations in a fresh schema, with a user, a group and its owner."""
    upgrade(db, MIGRATIONS_DIR)
    owner, joiner = uuid.uuid4(), uuid.uuid4()
    with db.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO users (id, display_name) VALUES (:a, 'Owner'), (:b, 'Joiner')"),
            {"a": owner, "b": joiner},
        )
        group_id = conn.execute(
            sa.text("INSERT INTO groups (name, created_by) VALUES ('Family', :u) RETURNING id"),
            {"u": owner},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO group_memberships (group_id, user_id, role) VALUES (:g, :u, 'owner')"
            ),
            {"g": group_id, "u": owner},
        )
    return {"engine": db, "owner": owner, "joiner": joiner, "group_id": group_id}


KEYS = CodeKeyring.parse(CODE_KEYS)


def _sealed(code: str, group_id) -> dict:
    key_id, sealed = KEYS.seal_code(code, group_id)
    return {"code_digest": KEYS.digest(code), "code_sealed": sealed, "code_key": key_id}


def _insert_invite(real_schema, code: str = "ABC-234-XYZ", **values) -> None:
    row = {
        "group_id": real_schema["group_id"],
        **_sealed(code, real_schema["group_id"]),
        "preset_role": "member",
        "max_uses": 1,
        "current_uses": 0,
        "created_by": real_schema["owner"],
        **values,
    }
    with real_schema["engine"].begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO group_invites (group_id, code_digest, code_sealed, code_key,"
                " preset_role, max_uses, current_uses, expires_at, created_by)"
                " VALUES (:group_id, :code_digest, :code_sealed, :code_key, :preset_role,"
                " :max_uses, :current_uses, now() + interval '1 day', :created_by)"
            ),
            row,
        )


def _constraint_of(excinfo) -> str | None:
    return excinfo.value.orig.diag.constraint_name


def test_the_real_schema_accepts_a_valid_invite(real_schema):
    _insert_invite(real_schema, max_uses=100, current_uses=100)
    _insert_invite(real_schema, code="HJK-MNP-789", preset_role="admin")
    assert scalar(real_schema["engine"], "SELECT count(*) FROM group_invites") == 2


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"max_uses": 0}, "group_invites_max_uses_range"),
        ({"max_uses": 101}, "group_invites_max_uses_range"),
        ({"max_uses": 2, "current_uses": 3}, "group_invites_uses_within_max"),
        ({"current_uses": -1}, "group_invites_uses_within_max"),
        ({"code_digest": b"short"}, "group_invites_code_digest_sha256"),
        ({"code_sealed": b"ABC-234-XYZ"}, "group_invites_code_sealed_length"),  # not sealed
        ({"code_key": ""}, "group_invites_code_key_present"),
        ({"preset_role": "owner"}, "group_invites_no_owner_invites"),
    ],
)
def test_the_real_schema_rejects_invalid_invites(real_schema, values, constraint):
    with pytest.raises(sa.exc.IntegrityError) as excinfo:
        _insert_invite(real_schema, **values)
    assert _constraint_of(excinfo) == constraint


def test_the_real_schema_keeps_codes_unique(real_schema):
    _insert_invite(real_schema)
    with pytest.raises(sa.exc.IntegrityError) as excinfo:
        _insert_invite(real_schema)  # the same code, sealed afresh: only the digest repeats
    assert _constraint_of(excinfo) == "group_invites_code_digest_unique"


def test_the_real_schema_allows_one_membership_per_user_and_group(real_schema):
    engine = real_schema["engine"]
    insert = sa.text(
        "INSERT INTO group_memberships (group_id, user_id, role) VALUES (:g, :u, :role)"
    )
    params = {"g": real_schema["group_id"], "u": real_schema["joiner"]}
    with engine.begin() as conn:
        conn.execute(insert, {**params, "role": "member"})
    with pytest.raises(sa.exc.IntegrityError) as excinfo, engine.begin() as conn:
        conn.execute(insert, {**params, "role": "viewer"})
    assert _constraint_of(excinfo) == "group_memberships_one_per_user"


def test_the_real_schema_allows_one_owner_per_group(real_schema):
    with pytest.raises(sa.exc.IntegrityError) as excinfo, real_schema["engine"].begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO group_memberships (group_id, user_id, role) VALUES (:g, :u, 'owner')"
            ),
            {"g": real_schema["group_id"], "u": real_schema["joiner"]},
        )
    assert _constraint_of(excinfo) == "group_memberships_one_owner"


@pytest.mark.parametrize(
    "assignments",
    [
        pytest.param("revoked_at = now()", id="when-only"),
        pytest.param("revoked_at = now(), revoked_by = created_by", id="when-who-no-why"),
        pytest.param("revoked_at = now(), revoked_reason = 'revoked'", id="revoked-without-who"),
        pytest.param("revoked_by = created_by", id="who-only"),
        pytest.param("revoked_reason = 'revoked'", id="why-only"),
        pytest.param(
            "revoked_at = now(), revoked_by = created_by,"
            " revoked_reason = 'creator_lost_authority'",
            id="lost-authority-with-who",
        ),
        pytest.param("revoked_at = now(), revoked_reason = 'expired'", id="unknown-reason"),
    ],
)
def test_the_real_schema_records_revocation_completely(real_schema, assignments):
    _insert_invite(real_schema)
    with pytest.raises(sa.exc.IntegrityError) as excinfo, real_schema["engine"].begin() as conn:
        conn.execute(sa.text(f"UPDATE group_invites SET {assignments}"))
    assert _constraint_of(excinfo) == "group_invites_revocation_complete"


@pytest.mark.parametrize(
    "assignments",
    [
        "revoked_at = now(), revoked_by = created_by, revoked_reason = 'revoked'",
        "revoked_at = now(), revoked_reason = 'creator_lost_authority'",
    ],
)
def test_the_real_schema_accepts_complete_revocations(real_schema, assignments):
    _insert_invite(real_schema)
    with real_schema["engine"].begin() as conn:
        conn.execute(sa.text(f"UPDATE group_invites SET {assignments}"))
