"""Invite codes at rest: the keyring, the migration of plain codes, key rotation.

Codes are found by a keyed digest and kept only sealed (app/code_keys.py).
Each database test runs in its own fresh schema (the ``db`` fixture).
"""

from __future__ import annotations

import shutil
import uuid

import psycopg2
import pytest
import sqlalchemy as sa

from app import code_keys
from app.code_keys import CodeKeyError, CodeKeyring, new_key_spec
from app.codes import generate_code
from app.migrate import MIGRATIONS_DIR, data_steps, upgrade
from app.services import Actor
from app.services import groups as group_service
from app.services import invites as invite_service
from app.unit_of_work import run
from tests.helpers import columns_of, scalar

OLD, NEW = new_key_spec("old"), new_key_spec("new")


# --- the keyring ------------------------------------------------------------------------


def test_digests_depend_on_the_key_and_nothing_else():
    old, both = CodeKeyring.parse(OLD), CodeKeyring.parse(f"{NEW},{OLD}")
    code = "ABC-234-XYZ"
    assert old.digest(code) == old.digest(code)
    assert both.digests(code) == [both.digest(code), old.digest(code)]
    assert both.digest(code) != old.digest(code)
    assert old.digest(code) != old.digest("ABC-234-XYY")
    assert len(old.digest(code)) == 32


def test_a_sealed_code_opens_only_with_its_key_and_for_its_group():
    keys = CodeKeyring.parse(f"{NEW},{OLD}")
    group, other_group = uuid.uuid4(), uuid.uuid4()
    key_id, sealed = keys.seal_code("ABC-234-XYZ", group)
    assert key_id == "new"
    assert len(sealed) == 39
    assert b"ABC" not in sealed
    assert keys.open_code(key_id, sealed, group) == "ABC-234-XYZ"
    assert keys.seal_code("ABC-234-XYZ", group)[1] != sealed  # a fresh nonce each time
    with pytest.raises(CodeKeyError, match="does not open"):
        keys.open_code(key_id, sealed, other_group)
    with pytest.raises(CodeKeyError, match="no longer names"):
        CodeKeyring.parse(OLD).open_code(key_id, sealed, group)


@pytest.mark.parametrize(
    "value", ["", "k", "k:", "k:short", "bad id:" + "A" * 43, f"{OLD},{OLD}", "k:" + "!" * 43]
)
def test_unusable_key_settings_are_refused(value):
    with pytest.raises(CodeKeyError):
        CodeKeyring.parse(value)


def test_new_key_specs_parse_and_differ():
    assert CodeKeyring.parse(new_key_spec("a")).current.id == "a"
    assert new_key_spec("a") != new_key_spec("a")


# --- the service under rotating keys -------------------------------------------------------


@pytest.fixture
def migrated(db):
    upgrade(db, MIGRATIONS_DIR)
    return db


def _group(engine, owner: Actor) -> uuid.UUID:
    return run(engine, group_service.create_group, owner, name="Keys")["id"]


def _create(engine, keys, owner, group_id) -> dict:
    return run(engine, invite_service.create_invite, owner, group_id, keys=keys, max_uses=5)


def _preview(engine, keys, code):
    return run(engine, invite_service.preview_invite, code, keys=keys)


def test_keys_rotate_without_losing_an_invite(migrated):
    owner = Actor(uuid.uuid4(), "Owner")
    group_id = _group(migrated, owner)
    old_only = CodeKeyring.parse(OLD)
    before = _create(migrated, old_only, owner, group_id)

    # 1. Every replica learns the new key as current, the old one still known.
    rotating = CodeKeyring.parse(f"{NEW},{OLD}")
    assert _preview(migrated, rotating, before["code"])["is_valid"] is True
    after = _create(migrated, rotating, owner, group_id)
    listed = run(migrated, invite_service.list_invites, owner, group_id, keys=rotating)
    assert {i["code"] for i in listed} == {before["code"], after["code"]}

    # 2. Everything stored moves to the new key, while the service keeps serving.
    assert code_keys.rekey(migrated, rotating) == (1, 0)
    assert scalar(migrated, "SELECT count(*) FROM group_invites WHERE code_key = 'old'") == 0

    # 3. The old key goes; every invite is still found, listed and joinable.
    new_only = CodeKeyring.parse(NEW)
    for invite in (before, after):
        assert _preview(migrated, new_only, invite["code"])["is_valid"] is True
    listed = run(migrated, invite_service.list_invites, owner, group_id, keys=new_only)
    assert {i["code"] for i in listed} == {before["code"], after["code"]}
    joiner = Actor(uuid.uuid4(), "Joiner")
    joined = run(migrated, invite_service.join_group, joiner, before["code"], keys=new_only)
    assert joined["membership"]["role"] == "member"
    # And the old key alone finds nothing any more.
    with pytest.raises(Exception, match="No such invite"):
        _preview(migrated, old_only, before["code"])


def test_a_code_taken_under_an_older_key_is_not_issued_again(migrated, monkeypatch):
    owner = Actor(uuid.uuid4(), "Owner")
    group_id = _group(migrated, owner)
    first = _create(migrated, CodeKeyring.parse(OLD), owner, group_id)
    # The next code drawn is the one already issued under the old key, then a fresh one.
    drawn = iter([first["code"], generate_code()])
    monkeypatch.setattr(invite_service, "generate_code", lambda: next(drawn))
    second = _create(migrated, CodeKeyring.parse(f"{NEW},{OLD}"), owner, group_id)
    assert second["code"] != first["code"]
    assert (
        scalar(migrated, "SELECT count(*) FROM group_invites WHERE group_id = :g", g=group_id) == 2
    )


# --- the migration of codes stored in the clear -----------------------------------------


@pytest.fixture
def before_sealing(db, tmp_path):
    """A schema at migration 030, with invites whose codes are stored in the clear."""
    old = tmp_path / "migrations"
    old.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:3]) <= 30:
            shutil.copy(path, old / path.name)
    upgrade(db, old)
    owner = uuid.uuid4()
    codes = [generate_code() for _ in range(3)]
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id) VALUES (:u)"), {"u": owner})
        group_id = conn.execute(
            sa.text("INSERT INTO groups (name, created_by) VALUES ('Old', :u) RETURNING id"),
            {"u": owner},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO group_memberships (group_id, user_id, role) VALUES (:g, :u, 'owner')"
            ),
            {"g": group_id, "u": owner},
        )
        for code in codes:
            conn.execute(
                sa.text(
                    "INSERT INTO group_invites (group_id, code, max_uses, expires_at, created_by)"
                    " VALUES (:g, :c, 3, now() + interval '1 day', :u)"
                ),
                {"g": group_id, "c": code, "u": owner},
            )
    return db, codes


def test_plain_codes_are_sealed_by_the_step_between_040_and_041(before_sealing):
    db, codes = before_sealing
    keys = CodeKeyring.parse(NEW)
    applied = upgrade(db, MIGRATIONS_DIR, steps=data_steps(keys))
    assert applied[:2] == ["040_sealed_invite_codes.sql", "041_drop_plain_invite_codes.sql"]
    columns = columns_of(db, "group_invites")
    assert "code" not in columns
    for code in codes:
        preview = run(db, invite_service.preview_invite, code, keys=keys)
        assert (preview["status"], preview["group"]["name"]) == ("active", "Old")


def test_without_the_keys_the_plain_codes_stay_and_041_refuses(before_sealing):
    db, codes = before_sealing
    with pytest.raises(psycopg2.Error, match="still holds codes in the clear"):
        upgrade(db, MIGRATIONS_DIR)  # no data steps: nothing seals them
    # 040 went in, 041 was rolled back: no code was lost on the way.
    with db.connect() as conn:
        kept = set(conn.execute(sa.text("SELECT code FROM group_invites")).scalars())
    assert kept == set(codes)
    # With the keys the same command finishes.
    applied = upgrade(db, MIGRATIONS_DIR, steps=data_steps(CodeKeyring.parse(NEW)))
    assert applied[0] == "041_drop_plain_invite_codes.sql"  # then any later files
